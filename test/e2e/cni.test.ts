// The weft CNI plugin driven as a runtime drives it (CNI_* environment, the
// network configuration on stdin) on a namespace the test makes, next to a
// weft sandbox on another lab host.
import test from 'ava';
import { execa } from 'execa';
import { fileURLToPath } from 'node:url';
import { labUp, labDown, labDir, callAgent, type LabState, type LabHost } from '../../deploy/lab/lab.ts';
import { weftOn, uniquePrefix, eventually } from '../helpers/weft-cli.ts';
import { join } from 'node:path';
import { FileAllocationStore } from '../../agent/allocation/store.ts';
import { formatIPv4 } from '../../lib/ipv4.ts';

const PLUGIN = fileURLToPath(new URL('../../bin/weft-cni', import.meta.url));
const prefix = uniquePrefix('c');
let lab: LabState;
const ns = (name: string): string => `${prefix}-${name}`;
const nsPath = (name: string): string => `/run/netns/${ns(name)}`;

interface CniRun { exitCode: number; json: Record<string, unknown> }
interface Result {
  interfaces: Array<{ name: string; mac: string; sandbox: string }>;
  ips: Array<{ address: string; gateway: string; interface: number }>;
  routes: Array<{ dst: string; gw: string }>;
  dns: { nameservers?: string[]; search?: string[]; options?: string[] };
}
interface Endpoint { name: string; network: string; ip: string }

async function cni(command: string, containerId: string, netns: string, config: object, extra: Record<string, string> = {}): Promise<CniRun> {
  const r = await execa(PLUGIN, [], {
    reject: false,
    timeout: 60_000,
    input: JSON.stringify(config),
    env: { CNI_COMMAND: command, CNI_CONTAINERID: containerId, CNI_NETNS: netns, CNI_IFNAME: 'eth7', CNI_PATH: '/opt/cni/bin', ...extra },
  });
  const out = String(r.stdout).trim();
  return { exitCode: r.exitCode ?? -1, json: out === '' ? {} : (JSON.parse(out) as Record<string, unknown>) };
}

const config = (over: object = {}): object => ({ cniVersion: '1.0.0', name: 'weftnet', type: 'weft', network: 'blue', socket: lab.hosts[0]!.socket, ...over });
const inNs = (name: string, args: string[]) => execa('ip', ['netns', 'exec', ns(name), ...args], { reject: false, timeout: 30_000 });

/** Overlay addresses the hosts' allocators hold as handed out (their saved state, written before a value is used). */
function allocatedIps(): Set<string> {
  const ips = new Set<string>();
  for (const host of lab.hosts) {
    const store = new FileAllocationStore(join(host.dataDir, 'cluster', 'alloc'));
    for (const space of store.spaces().filter((s) => s.startsWith('ip/'))) for (const v of store.load(space)?.allocated ?? []) ips.add(formatIPv4(v));
  }
  return ips;
}

async function ok(h: LabHost, args: string[]): Promise<string> {
  const r = await weftOn(h, args);
  if (r.exitCode !== 0) throw new Error(`weft ${args.join(' ')}: ${r.stdout}${r.stderr}`);
  return r.stdout;
}

test.before(async () => {
  lab = await labUp({ hosts: 2, prefix });
  // Namespaces made by "a container runtime", under the lab's prefix so lab down removes them too.
  for (const name of ['c1', 'c2']) await execa('ip', ['netns', 'add', ns(name)]);
  await ok(lab.hosts[0]!, ['network', 'create', 'blue']);
  await ok(lab.hosts[1]!, ['run', '--detach', '--network', 'blue', '--name', 'web', '--', 'sleep', '900']);
});

test.after.always(async () => {
  for (const name of ['c1', 'c2']) await execa('ip', ['netns', 'delete', ns(name)], { reject: false });
  await labDown(prefix);
});

test.serial('VERSION lists 1.0.0 and 1.1.0', async (t) => {
  const r = await cni('VERSION', '', '', {});
  t.is(r.exitCode, 0);
  t.true((r.json['supportedVersions'] as string[]).includes('1.0.0'));
  t.true((r.json['supportedVersions'] as string[]).includes('1.1.0'));
});

test.serial('ADD attaches the namespace: it reaches a sandbox on h2 and resolves it through the returned nameserver; ADD again is the same', async (t) => {
  const first = await cni('ADD', 'ctr1', nsPath('c1'), config(), { CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAME=pod1;K8S_POD_NAMESPACE=default' });
  t.is(first.exitCode, 0, JSON.stringify(first.json));
  const result = first.json as unknown as Result;
  t.is(result.interfaces[0]?.name, 'eth7');
  t.is(result.interfaces[0]?.sandbox, nsPath('c1'));
  t.regex(result.ips[0]?.address ?? '', /^100\.\d+\.\d+\.\d+\/24$/);
  t.is(result.ips[0]?.interface, 0);
  t.deepEqual(result.routes.map((r) => r.dst), ['0.0.0.0/0'], 'blue is not internal: a default route');
  const nameserver = result.dns.nameservers?.[0];
  t.truthy(nameserver);
  // What a `weft run` sandbox's resolv.conf has (ndots:0), and the network as the search domain.
  t.deepEqual(result.dns.search, ['blue']);
  t.deepEqual(result.dns.options, ['ndots:0']);
  const links = JSON.parse(String((await inNs('c1', ['ip', '-j', 'addr', 'show', 'dev', 'eth7'])).stdout)) as Array<{ address: string; addr_info: Array<{ local: string; prefixlen: number }> }>;
  t.is(links[0]?.address, result.interfaces[0]?.mac);
  t.is(`${links[0]?.addr_info[0]?.local}/${links[0]?.addr_info[0]?.prefixlen}`, result.ips[0]?.address ?? '');
  const mine = (JSON.parse(await ok(lab.hosts[0]!, ['endpoints', '--network', 'blue', '--json'])) as Endpoint[]).filter((e) => e.name === 'pod1');
  t.deepEqual(mine.map((e) => `${e.ip}/24`), [result.ips[0]?.address], 'listed under the CNI_ARGS pod name');

  const web = await eventually('web to be listed on h1', async () => (JSON.parse(await ok(lab.hosts[0]!, ['endpoints', '--network', 'blue', '--json'])) as Endpoint[]).find((e) => e.name === 'web'));
  await eventually('c1 to reach web on h2', async () => (await inNs('c1', ['ping', '-c', '1', '-W', '1', web.ip])).exitCode === 0);
  const dig = await eventually('web to resolve through the returned nameserver', async () => {
    const r = await inNs('c1', ['dig', '+short', '+time=2', '+tries=2', `@${nameserver ?? ''}`, 'web']);
    return String(r.stdout).split('\n').includes(web.ip) ? r : undefined;
  });
  t.truthy(dig);
  // A short name qualified with the returned search domain is weft's too: `web.blue`, not a query upstream.
  const qualified = await inNs('c1', ['dig', '+short', '+time=2', '+tries=2', `@${nameserver ?? ''}`, `web.${result.dns.search?.[0] ?? ''}`]);
  t.true(String(qualified.stdout).split('\n').includes(web.ip), `web.blue resolves to ${web.ip}: ${String(qualified.stdout)}`);

  const again = await cni('ADD', 'ctr1', nsPath('c1'), config(), { CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAME=pod1' });
  t.is(again.exitCode, 0);
  t.deepEqual(again.json, first.json, 'a retried ADD gets the same result');
  const after = (JSON.parse(await ok(lab.hosts[0]!, ['endpoints', '--network', 'blue', '--json'])) as Endpoint[]).filter((e) => e.name === 'pod1');
  t.is(after.length, 1, 'and no second address');
});

test.serial('CHECK passes on the attached container and reports a deleted interface', async (t) => {
  const good = await cni('CHECK', 'ctr1', nsPath('c1'), config());
  t.is(good.exitCode, 0, JSON.stringify(good.json));
  await inNs('c1', ['ip', 'link', 'del', 'dev', 'eth7']);
  const drift = await cni('CHECK', 'ctr1', nsPath('c1'), config());
  t.not(drift.exitCode, 0);
  t.is(drift.json['code'], 101);
  t.regex(String(drift.json['details']), /not inside the sandbox|missing/);
  const unknown = await cni('CHECK', 'nosuch', nsPath('c1'), config());
  t.is(unknown.json['code'], 3, 'CHECK of a container weft never attached: container unknown');
});

test.serial('DEL releases everything, twice and for unknown containers; the address is reusable and doctor is clean', async (t) => {
  const h1 = lab.hosts[0]!;
  const before = (JSON.parse(await ok(h1, ['endpoints', '--network', 'blue', '--json'])) as Endpoint[]).find((e) => e.name === 'pod1');
  t.truthy(before);
  t.true(allocatedIps().has(before!.ip), 'control: the attached address is held');
  for (let i = 0; i < 2; i++) {
    const r = await cni('DEL', 'ctr1', nsPath('c1'), config());
    t.is(r.exitCode, 0, JSON.stringify(r.json));
  }
  t.is((await cni('DEL', 'never-added', nsPath('c1'), config())).exitCode, 0);
  t.is((await cni('DEL', 'never-added', '', config())).exitCode, 0, 'DEL without a namespace');
  const left = (JSON.parse(await ok(h1, ['endpoints', '--network', 'blue', '--json'])) as Endpoint[]).filter((e) => e.name === 'pod1');
  t.deepEqual(left, []);
  await eventually('doctor to be clean on h1', async () => (await weftOn(h1, ['doctor'])).exitCode === 0);
  t.false(allocatedIps().has(before!.ip), 'the address is back in the free space, to be handed out again');
  const next = await cni('ADD', 'ctr2', nsPath('c2'), config());
  t.is(next.exitCode, 0, JSON.stringify(next.json));
  const nextIp = (next.json as unknown as Result).ips[0]?.address.split('/')[0] ?? '';
  t.true(allocatedIps().has(nextIp));
});

test.serial('DEL after the namespace is gone still releases the address and the entry', async (t) => {
  const h1 = lab.hosts[0]!;
  await execa('ip', ['netns', 'delete', ns('c2')]);
  const held = (JSON.parse(await ok(h1, ['endpoints', '--network', 'blue', '--json'])) as Endpoint[]).find((e) => e.name === '');
  t.truthy(held, 'control: ctr2 is listed');
  const r = await cni('DEL', 'ctr2', nsPath('c2'), config());
  t.is(r.exitCode, 0, JSON.stringify(r.json));
  t.false(allocatedIps().has(held!.ip), 'its address is released');
  const left = (JSON.parse(await ok(h1, ['endpoints', '--network', 'blue', '--json'])) as Endpoint[]).filter((e) => e.name === '' && e.network === 'blue');
  t.deepEqual(left, []);
  await eventually('doctor to be clean on h1', async () => (await weftOn(h1, ['doctor'])).exitCode === 0);
  await execa('ip', ['netns', 'add', ns('c2')]);
});

test.serial('a bad configuration is error 7, an unknown network too, and no agent is error 11', async (t) => {
  const bad = await cni('ADD', 'ctr3', nsPath('c2'), config({ network: 'no such/net' }));
  t.is(bad.json['code'], 7);
  t.not(bad.exitCode, 0);
  const unknown = await cni('ADD', 'ctr3', nsPath('c2'), config({ network: 'nosuchnet' }));
  t.is(unknown.json['code'], 7, JSON.stringify(unknown.json));
  const socket = `${labDir(prefix)}/no-agent.sock`;
  const down = await cni('ADD', 'ctr3', nsPath('c2'), config({ socket }));
  t.is(down.json['code'], 11);
  t.is(down.json['msg'], `cannot reach the weft agent at ${socket}`);
});

test.serial('the agent refuses hostile container keys and a key reused for another network', async (t) => {
  const h1 = lab.hosts[0]!;
  const base = { networks: ['blue'], name: '', aliases: [], netns: nsPath('c2'), command: [], services: [] };
  const bad: Array<[object, RegExp]> = [
    [{ containerId: '../x', ifname: 'eth0' }, /container ID/],
    [{ containerId: 'x'.repeat(256), ifname: 'eth0' }, /container ID/],
    [{ containerId: 'ok1', ifname: 'eth0/../x' }, /interface name/],
    [{ containerId: 'ok1', ifname: '..' }, /interface name/],
    [{ containerId: 'ok1', ifname: '' }, /needs its interface name/],
    [{ containerId: 'ok1', ifname: 'eth0', networks: ['blue', 'red'] }, /exactly one network/],
    [{ containerId: 'ok1', ifname: 'eth0', netns: '' }, /needs the container's namespace/],
    [{ containerId: 'ok1', ifname: 'eth0', command: ['sleep', '1'] }, /cannot run a command/],
  ];
  for (const [over, reason] of bad) {
    const error = await t.throwsAsync(callAgent(h1, 'SandboxCreate', { ...base, ...over }));
    t.regex(error?.message ?? '', reason, JSON.stringify(over));
  }
  await ok(h1, ['network', 'create', 'green']);
  t.is((await cni('ADD', 'ctr4', nsPath('c2'), config())).exitCode, 0);
  const other = await cni('ADD', 'ctr4', nsPath('c2'), config({ network: 'green' }));
  t.is(other.json['code'], 100);
  t.regex(String(other.json['msg']), /already attached to network "blue"/);
  t.is((await cni('DEL', 'ctr4', nsPath('c2'), config())).exitCode, 0);
});

test.serial('CNI 1.1: STATUS says whether ADD can work; GC releases what its CNI network no longer lists, nothing else', async (t) => {
  const h1 = lab.hosts[0]!;
  const v11 = (over: object = {}): object => config({ cniVersion: '1.1.0', ...over });
  const status = await cni('STATUS', '', '', v11());
  t.is(status.exitCode, 0, JSON.stringify(status.json));
  const missing = await cni('STATUS', '', '', v11({ network: 'nosuchnet' }));
  t.is(missing.json['code'], 50);
  t.regex(String(missing.json['msg']), /network nosuchnet/);
  const down = await cni('STATUS', '', '', v11({ socket: `${labDir(prefix)}/no-agent.sock` }));
  t.is(down.json['code'], 50);

  // Two containers through the CNI network "weftnet" and one through "othernet", all on weft network blue.
  for (const name of ['g1', 'g2', 'g3']) await execa('ip', ['netns', 'add', ns(name)]);
  t.teardown(async () => {
    for (const name of ['g1', 'g2', 'g3']) await execa('ip', ['netns', 'delete', ns(name)], { reject: false });
  });
  const add = async (id: string, nsName: string, over: object = {}) => {
    const r = await cni('ADD', id, nsPath(nsName), v11(over), { CNI_ARGS: `name=${id}` });
    t.is(r.exitCode, 0, JSON.stringify(r.json));
    return (r.json as unknown as Result).ips[0]!.address.split('/')[0]!;
  };
  const ipG1 = await add('gc1', 'g1');
  await add('gc2', 'g2');
  await add('gc3', 'g3', { name: 'othernet' });
  const names = async () => (JSON.parse(await ok(h1, ['endpoints', '--network', 'blue', '--json'])) as Endpoint[]).map((e) => e.name).filter((n) => n.startsWith('gc')).sort();
  t.deepEqual(await names(), ['gc1', 'gc2', 'gc3']);

  // The runtime still has gc2 only: gc1 goes, gc3 (another CNI network) and web (weft's own) stay.
  const gc = await cni('GC', '', '', v11({ 'cni.dev/valid-attachments': [{ containerID: 'gc2', ifname: 'eth7' }] }));
  t.is(gc.exitCode, 0, JSON.stringify(gc.json));
  t.deepEqual(await names(), ['gc2', 'gc3']);
  t.false(allocatedIps().has(ipG1), 'the collected attachment\'s address is released');
  t.true((await weftOn(h1, ['endpoints', '--network', 'blue', '--json'])).stdout.includes('"web"'), 'weft\'s own sandbox stays');
  t.is((await cni('GC', '', '', v11({ 'cni.dev/valid-attachments': [{ containerID: 'gc2', ifname: 'eth7' }] }))).exitCode, 0, 'GC again changes nothing');
  t.deepEqual(await names(), ['gc2', 'gc3']);

  const refused = await cni('GC', '', '', v11({ 'cni.dev/valid-attachments': [{ containerID: '../gc2', ifname: 'eth7' }] }));
  t.is(refused.json['code'], 7, 'a malformed list is refused, not read as "keep nothing"');
  t.deepEqual(await names(), ['gc2', 'gc3']);

  // An empty list on othernet releases gc3; a GC for a weft network that is gone is nothing to do.
  t.is((await cni('GC', '', '', v11({ name: 'othernet', 'cni.dev/valid-attachments': [] }))).exitCode, 0);
  t.deepEqual(await names(), ['gc2']);
  t.is((await cni('GC', '', '', v11({ network: 'nosuchnet', 'cni.dev/valid-attachments': [] }))).exitCode, 0);
  t.is((await cni('DEL', 'gc2', nsPath('g2'), v11())).exitCode, 0);
  t.deepEqual(await names(), []);
  await eventually('doctor to be clean on h1', async () => (await weftOn(h1, ['doctor'])).exitCode === 0);
});
