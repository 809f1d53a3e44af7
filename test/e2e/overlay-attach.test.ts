// Container runtimes bring their own namespace: `weft attach` adopts it, a
// sandbox can sit on several networks at once, and `weft detach` gives the
// namespace back without deleting it.
import test from 'ava';
import { execa } from 'execa';
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
