// Two emulated hosts (underlay MTU 1400), two overlay networks: traffic over
// VXLAN with only static FDB/neighbour entries, local bridging, isolation
// between networks, and the MTU derived from the underlay.
import test from 'ava';
import { execa } from 'execa';
import type { EmulatedHosts } from '../../dataplane/testing/emulated-hosts.ts';
import type { Network, NetworkSpec, Sandbox } from '../../dataplane/index.ts';
import { createEmulatedHosts, pingFrom, randomPrefix } from '../../dataplane/testing/emulated-hosts.ts';
import { attachSandbox, createSandbox, ensureNetwork, macFromIp, reconcile } from '../../dataplane/index.ts';

const UNDERLAY_MTU = 1400;
let lab: EmulatedHosts;
const blue = (vtep: string): NetworkSpec => ({ name: 'blue', vni: 4097, subnet: '100.64.1.0/24', gateway: '100.64.1.1', vtep });
const red = (vtep: string): NetworkSpec => ({ name: 'red', vni: 4098, subnet: '100.64.2.0/24', gateway: '100.64.2.1', vtep });
const names: Record<string, string> = {};
const nets: Record<string, Network> = {};

function nameOf(sandbox: Sandbox): string {
  if (sandbox.ref.kind !== 'name') throw new Error('expected a named sandbox');
  return sandbox.ref.name;
}

test.before(async () => {
  lab = await createEmulatedHosts({ prefix: randomPrefix('dpv'), hosts: 2, mtu: UNDERLAY_MTU });
  const [h1, h2] = lab.hosts as [typeof lab.hosts[0], typeof lab.hosts[0]];
  for (const [host, tag] of [[h1, '1'], [h2, '2']] as const) {
    nets[`blue${tag}`] = (await ensureNetwork(host.ctx, blue(host.ip))).network;
    nets[`red${tag}`] = (await ensureNetwork(host.ctx, red(host.ip))).network;
  }
  const place = async (host: typeof h1, id: string, net: Network, ip: string) => {
    const { sandbox } = await createSandbox(host.ctx, id);
    await attachSandbox(host.ctx, sandbox, net, { ip, defaultRoute: true });
    names[id] = nameOf(sandbox);
  };
  await place(h1, 'a1', nets['blue1']!, '100.64.1.10');
  await place(h1, 'a2', nets['blue1']!, '100.64.1.11');
  await place(h2, 'b1', nets['blue2']!, '100.64.1.20');
  await place(h1, 'r1', nets['red1']!, '100.64.2.10');
  await place(h2, 'r2', nets['red2']!, '100.64.2.20');
  const remote = (ip: string, vtep: string) => ({ ip, mac: macFromIp(ip), vtep });
  // Each host gets the other host's endpoints only: nothing for local ones.
  const r1 = await reconcile(h1.ctx, [
    { vni: 4097, endpoints: [remote('100.64.1.20', h2.ip)] },
    { vni: 4098, endpoints: [remote('100.64.2.20', h2.ip)] },
  ]);
  const r2 = await reconcile(h2.ctx, [
    { vni: 4097, endpoints: [remote('100.64.1.10', h1.ip), remote('100.64.1.11', h1.ip)] },
    { vni: 4098, endpoints: [remote('100.64.2.10', h1.ip)] },
  ]);
  if (r1.errors.length + r2.errors.length > 0) throw new Error([...r1.errors, ...r2.errors].join('\n'));
});

test.after.always(async () => {
  await lab?.cleanup();
});

test('the overlay MTU is the underlay MTU minus 50 on bridge, VXLAN device and veths', async (t) => {
  t.is(nets['blue1']!.mtu, UNDERLAY_MTU - 50);
  const links = JSON.parse((await execa('ip', ['-n', nets['blue1']!.netns, '-d', '-j', 'link', 'show'])).stdout) as Array<{ ifname: string; mtu: number; linkinfo?: { info_kind?: string; info_data?: Record<string, unknown> } }>;
  for (const link of links.filter((l) => l.ifname !== 'lo')) t.is(link.mtu, UNDERLAY_MTU - 50, link.ifname);
  const vxlan = links.find((l) => l.ifname === 'vxlan0')!;
  t.like(vxlan.linkinfo?.info_data, { id: 4097, local: lab.hosts[0]!.ip, port: 4789, learning: false, proxy: true });
  const inside = JSON.parse((await execa('ip', ['-n', names['a1']!, '-j', 'link', 'show', 'eth0'])).stdout) as Array<{ mtu: number; address: string }>;
  t.is(inside[0]!.mtu, UNDERLAY_MTU - 50);
  t.is(inside[0]!.address, macFromIp('100.64.1.10'));
});

test('sandboxes on two hosts reach each other over VXLAN with only static entries', async (t) => {
  const ping = await pingFrom(names['a1']!, '100.64.1.20');
  t.true(ping.ok, ping.output);
  t.true((await pingFrom(names['b1']!, '100.64.1.11')).ok);
  // nolearning: after that traffic the VXLAN driver still holds only what we put there.
  const fdb = JSON.parse((await execa('ip', ['netns', 'exec', nets['blue1']!.netns, 'bridge', '-j', 'fdb', 'show', 'dev', 'vxlan0'])).stdout) as Array<{ mac: string; dst?: string; state: string; flags: string[] }>;
  const remote = fdb.filter((e) => e.dst !== undefined);
  t.deepEqual(remote.map((e) => [e.mac, e.dst, e.state]), [[macFromIp('100.64.1.20'), lab.hosts[1]!.ip, 'permanent']]);
  // The sandbox learnt the remote MAC from the VXLAN device's ARP proxy, which is the MAC we programmed.
  const neigh = JSON.parse((await execa('ip', ['-n', names['a1']!, '-j', 'neigh', 'show', '100.64.1.20'])).stdout) as Array<{ lladdr?: string }>;
  t.is(neigh[0]?.lladdr, macFromIp('100.64.1.20'));
});

test('two sandboxes on the same host talk through the local bridge', async (t) => {
  const ping = await pingFrom(names['a1']!, '100.64.1.11');
  t.true(ping.ok, ping.output);
  t.true((await pingFrom(names['a2']!, '100.64.1.1')).ok, 'the gateway on the local bridge answers');
});

test('a sandbox on network blue cannot reach network red, locally or remotely', async (t) => {
  t.true((await pingFrom(names['r1']!, '100.64.2.20')).ok, 'red itself works');
  for (const target of ['100.64.2.10', '100.64.2.20', '100.64.2.1']) {
    const ping = await pingFrom(names['a1']!, target);
    t.false(ping.ok, `blue a1 reached red ${target}: ${ping.output}`);
  }
  t.false((await pingFrom(names['r2']!, '100.64.1.10')).ok, 'red r2 reached blue a1');
});

test('full-size packets with DF set pass at the overlay MTU, larger ones do not', async (t) => {
  const payload = UNDERLAY_MTU - 50 - 28;
  const fits = await pingFrom(names['a1']!, '100.64.1.20', ['-M', 'do', '-s', String(payload)]);
  t.true(fits.ok, fits.output);
  const tooBig = await pingFrom(names['a1']!, '100.64.1.20', ['-M', 'do', '-s', String(payload + 1)]);
  t.false(tooBig.ok, tooBig.output);
});
