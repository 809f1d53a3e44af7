// Container runtimes bring their own namespace: `weft attach` adopts it, a
// sandbox can sit on several networks at once, and `weft detach` gives the
// namespace back without deleting it.
import test from 'ava';
import { execa } from 'execa';
import { readdirSync } from 'node:fs';
import { labUp, labDown, type LabState, type LabHost } from '../../deploy/lab/lab.ts';
import { weftOn, uniquePrefix, eventually } from '../helpers/weft-cli.ts';

const prefix = uniquePrefix('t');
let lab: LabState;
const ns = (name: string): string => `${prefix}-${name}`;

interface Endpoint { name: string; network: string; ip: string; netns: string }

async function ok(h: LabHost, args: string[]): Promise<string> {
  const r = await weftOn(h, args);
  if (r.exitCode !== 0) throw new Error(`weft ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

const inNetns = (netns: string, args: string[]) => execa('ip', ['netns', 'exec', netns, ...args], { reject: false, timeout: 30_000 });

test.before(async () => {
  lab = await labUp({ hosts: 2, prefix });
  // A namespace made by "a container runtime" (the test), named under the lab's prefix so lab down removes it.
  await execa('ip', ['netns', 'add', ns('ctr')]);
});

test.after.always(async () => {
  await labDown(prefix);
});

test.serial('an existing namespace is attached to two networks and reaches both', async (t) => {
  const [h1, h2] = lab.hosts as [LabHost, LabHost];
  await ok(h1, ['network', 'create', 'front']);
  await ok(h1, ['network', 'create', 'back']);
  await ok(h2, ['run', '--detach', '--network', 'front', '--name', 'f2', '--', 'sleep', '600']);
  await ok(h2, ['run', '--detach', '--network', 'back', '--name', 'b2', '--', 'sleep', '600']);
  const out = await ok(h1, ['attach', '--netns', ns('ctr'), '--network', 'front', '--network', 'back', '--name', 'ctr']);
  t.regex(out, /front/);
  t.regex(out, /back/);
  const links = JSON.parse(String((await inNetns(ns('ctr'), ['ip', '-j', 'addr', 'show'])).stdout)) as Array<{ ifname: string }>;
  t.deepEqual(links.map((l) => l.ifname).filter((n) => n.startsWith('eth')).sort(), ['eth0', 'eth1']);
  for (const [network, name] of [['front', 'f2'], ['back', 'b2']] as const) {
    const target = await eventually(`${name} to be listed on h1`, async () => (JSON.parse(await ok(h1, ['endpoints', '--network', network, '--json'])) as Endpoint[]).find((e) => e.name === name));
    const ping = await eventually(`ctr to reach ${name}`, async () => {
      const r = await inNetns(ns('ctr'), ['ping', '-c', '1', '-W', '1', target.ip]);
      return r.exitCode === 0 ? r : undefined;
    });
    t.is(ping.exitCode, 0);
  }
});

/** Interface names in a namespace, to show that a refused attach changed nothing there. */
async function linksOf(netns: string): Promise<string[]> {
  return (JSON.parse(String((await execa('ip', ['-n', netns, '-j', 'link', 'show'])).stdout)) as Array<{ ifname: string }>).map((l) => l.ifname).sort();
}

test.serial('attach refuses the agent\'s own namespace, weft\'s and the lab\'s namespaces, and what is not a network namespace', async (t) => {
  const [h1, h2] = lab.hosts as [LabHost, LabHost];
  const networkNamespaces = readdirSync('/run/netns').filter((n) => /-h[12]-n\d+$/.test(n) && n.startsWith(prefix));
  const h1Network = networkNamespaces.find((n) => n.startsWith(`${h1.netns}-n`));
  const h2Network = networkNamespaces.find((n) => n.startsWith(`${h2.netns}-n`));
  t.truthy(h1Network, 'h1 has a network namespace (front or back)');
  t.truthy(h2Network);
  const cases: Array<[string, RegExp]> = [
    [`/proc/${h1.pid}/ns/net`, /is the agent's own network namespace/],
    [h1.netns, /is the agent's own network namespace/],
    [`/run/netns/${h2.netns}`, new RegExp(`is weft's own namespace ${h2.netns} `)],
    [ns('sw'), new RegExp(`is weft's own namespace ${ns('sw')} `)],
    [`/run/netns/${h1Network}`, new RegExp(`is weft's own namespace ${h1Network} `)],
    [h2Network!, new RegExp(`is weft's own namespace ${h2Network} `)],
    [`/proc/${h1.pid}/ns/mnt`, /is not a network namespace/],
    ['/etc/hostname', /is not a namespace/],
    ['/proc/999999999/ns/net', /does not exist/],
  ];
  const watched = [h1.netns, h2.netns, ns('sw'), h1Network!, h2Network!];
  const before = await Promise.all(watched.map(linksOf));
  const endpointsBefore = await ok(h1, ['endpoints', '--json']);
  for (const [netns, reason] of cases) {
    const r = await weftOn(h1, ['attach', '--netns', netns, '--network', 'front', '--name', 'intruder']);
    t.not(r.exitCode, 0, `attach --netns ${netns} must be refused`);
    t.regex(r.stderr, reason, netns);
  }
  t.deepEqual(await Promise.all(watched.map(linksOf)), before, 'no interface was added anywhere');
  t.is(await ok(h1, ['endpoints', '--json']), endpointsBefore, 'no endpoint was published');
});

test.serial('attach refuses PID 1\'s network namespace (the machine\'s own)', async (t) => {
  const h1 = lab.hosts[0]!;
  const r = await weftOn(h1, ['attach', '--netns', '/proc/1/ns/net', '--network', 'front', '--name', 'intruder']);
  t.not(r.exitCode, 0);
  // Where PID 1's namespace files cannot even be read (a confined machine), the stat refuses it first.
  t.regex(r.stderr, /is the network namespace of PID 1|cannot inspect network namespace \/proc\/1\/ns\/net: EACCES/);
});

test.serial('detach from one network keeps the other; detach from all keeps the adopted namespace', async (t) => {
  const h1 = lab.hosts[0]!;
  await ok(h1, ['detach', '--netns', ns('ctr'), '--network', 'back']);
  const mine = (JSON.parse(await ok(h1, ['endpoints', '--json'])) as Endpoint[]).filter((e) => e.name === 'ctr');
  t.deepEqual(mine.map((e) => e.network), ['front']);
  await ok(h1, ['detach', '--netns', ns('ctr')]);
  const list = String((await execa('ip', ['netns', 'list'])).stdout);
  t.true(list.includes(ns('ctr')), 'the runtime\'s namespace is still there');
  const links = JSON.parse(String((await inNetns(ns('ctr'), ['ip', '-j', 'link', 'show'])).stdout)) as Array<{ ifname: string }>;
  t.deepEqual(links.map((l) => l.ifname), ['lo'], 'weft removed only its own interfaces');
});

test.serial('weft run in the foreground passes the exit code through and removes its sandbox', async (t) => {
  const h1 = lab.hosts[0]!;
  const r = await weftOn(h1, ['run', '--network', 'front', '--name', 'once', '--', 'sh', '-c', 'ip -4 -o addr show eth0 | grep -q "inet 100\\." && exit 3']);
  t.is(r.exitCode, 3);
  const left = (JSON.parse(await ok(h1, ['endpoints', '--json'])) as Endpoint[]).filter((e) => e.name === 'once');
  t.deepEqual(left, []);
});
