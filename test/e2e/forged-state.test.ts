// A compromised member speaks only for itself: on a 3-host lab, h3's node key
// and PSK are used by a hand-written sync client (h3's agent stopped) to hand
// h1 forged state of h2: a newer version of h2's endpoint with another VTEP,
// a tombstone of the network h2 created, and a roster record of h2 "left".
// h1 must keep h2's real state (docs/security/signed-records.md).
import test from 'ava';
import { execa } from 'execa';
import { fileURLToPath } from 'node:url';
import { labUp, labDown, type LabState, type LabHost } from '../../deploy/lab/lab.ts';
import { weftOn, uniquePrefix, eventually } from '../helpers/weft-cli.ts';

const prefix = uniquePrefix('f');
let lab: LabState;
const host = (name: string): LabHost => lab.hosts.find((h) => h.name === name)!;
const FIXTURE = fileURLToPath(new URL('./fixtures/rogue-member.ts', import.meta.url));

interface MemberJson { nodeId: string; name: string; peerId: string; state: string }
interface EndpointJson { name: string; node: string }

async function ok(h: LabHost, args: string[]): Promise<string> {
  const r = await weftOn(h, args);
  if (r.exitCode !== 0) throw new Error(`weft ${args.join(' ')} on ${h.name} exited ${r.exitCode}: ${r.stderr}`);
  return r.stdout;
}

const members = async (h: LabHost): Promise<MemberJson[]> => JSON.parse(await ok(h, ['members', '--json'])) as MemberJson[];

test.before(async () => {
  lab = await labUp({ hosts: 3, prefix });
});

test.after.always(async () => {
  await labDown(prefix);
});

test.serial('forged state of another member, relayed by a member, changes nothing', async (t) => {
  const [h1, h2, h3] = [host('h1'), host('h2'), host('h3')];
  await ok(h2, ['network', 'create', 'app']);
  await eventually('h1 to know network app', async () => (await weftOn(h1, ['network', 'inspect', 'app'])).exitCode === 0);
  await ok(h1, ['run', '--detach', '--network', 'app', '--name', 'one', '--', 'sleep', '3600']);
  await ok(h2, ['run', '--detach', '--network', 'app', '--name', 'two', '--', 'sleep', '3600']);
  await eventually('h1 to list h2\'s endpoint', async () => (JSON.parse(await ok(h1, ['endpoints', '--network', 'app', '--json'])) as EndpointJson[]).some((e) => e.name === 'two'));
  const list = await members(h1);
  const target = list.find((m) => m.name === 'h1')!;
  const victim = list.find((m) => m.name === 'h2')!;
  const networkId = (JSON.parse(await ok(h1, ['network', 'inspect', 'app'])) as { id: string }).id;

  process.kill(h3.pid, 'SIGKILL');
  // h1 aborts a dead member's connections when it declares it dead: let that happen before
  // the rogue connects with h3's key, or it may cut the rogue's first sync (the fixture redials too).
  await eventually('h1 to declare h3 dead', async () => (await members(h1)).find((m) => m.name === 'h3')?.state === 'dead', 60_000);
  const r = await execa('ip', ['netns', 'exec', h3.netns, process.execPath, '--disable-warning=ExperimentalWarning', FIXTURE, h3.dataDir, h1.ip, target.peerId, victim.nodeId, networkId], { reject: false, timeout: 90_000 });
  t.is(r.exitCode, 0, String(r.stderr));
  const held = JSON.parse(String(r.stdout).trim().split('\n').pop()!) as { endpointVtep: string | null; networkDeleted: boolean | null; victimStatus: string | null };
  t.deepEqual(held, { endpointVtep: h2.ip, networkDeleted: false, victimStatus: 'active' });

  // And what h1 programs and shows agrees.
  t.is((await weftOn(h1, ['network', 'inspect', 'app'])).exitCode, 0);
  t.true((JSON.parse(await ok(h1, ['endpoints', '--network', 'app', '--json'])) as EndpointJson[]).some((e) => e.name === 'two'));
  t.not((await members(h1)).find((m) => m.name === 'h2')?.state, 'left');
});
