// Floods from an outsider's address must not keep members or joiners out. On
// a real lab: h1..h3 form the cluster, h4 joins during the tests, h5 is the
// outsider (its agent never joins).
//  - Admission port (2377): join streams with junk, idle connections and an
//    oversized message from h5, while h4 joins through the same member.
//  - Gossip port (7946): 200 idle TCP connections from h5 to every member,
//    while a restarted member reconnects and a new node joins.
import test from 'ava';
import { execa, type ResultPromise } from 'execa';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { labUp, labDown, restartAgent, waitForAgent, type LabState, type LabHost } from '../../deploy/lab/lab.ts';
import { weftOn, uniquePrefix, eventually } from '../helpers/weft-cli.ts';

const prefix = uniquePrefix('f');
let lab: LabState;
const host = (name: string): LabHost => lab.hosts.find((h) => h.name === name)!;
const fixture = (name: string): string => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));

interface MemberJson { name: string; state: string; connected: boolean }

async function members(h: LabHost): Promise<MemberJson[]> {
  const r = await weftOn(h, ['members', '--json']);
  if (r.exitCode !== 0) throw new Error(`weft members on ${h.name}: ${r.stderr}`);
  return JSON.parse(r.stdout) as MemberJson[];
}

/** Every named host lists exactly the named hosts as alive, and is connected to all of them. */
async function meshOf(names: string[]): Promise<boolean> {
  for (const name of names) {
    const list = (await members(host(name))).filter((m) => m.state === 'alive');
    const seen = list.map((m) => m.name).sort();
    if (seen.join() !== [...names].sort().join() || !list.every((m) => m.connected)) return false;
  }
  return true;
}

function inNamespace(h: LabHost, script: string, args: string[]): ResultPromise {
  return execa('ip', ['netns', 'exec', h.netns, process.execPath, '--disable-warning=ExperimentalWarning', fixture(script), ...args], { reject: false, timeout: 180_000 });
}

test.before(async () => {
  lab = await labUp({ hosts: 5, members: 3, prefix });
});

test.after.always(async () => {
  await labDown(prefix);
});

test.serial('an admission flood from one address is limited and sampled; a join from another address succeeds meanwhile', async (t) => {
  const h1 = host('h1');
  const logBefore = readFileSync(h1.logFile, 'utf8').length;
  const flood = inNamespace(host('h5'), 'admission-flood.ts', [`${h1.ip}:2377`, '25000', '20', '50']);
  await new Promise((resolve) => setTimeout(resolve, 3_000));
  const token = (await weftOn(h1, ['token'])).stdout.trim();
  const started = Date.now();
  const joined = await weftOn(host('h4'), ['join', '--token', token, h1.ip]);
  const joinSeconds = (Date.now() - started) / 1000;
  t.is(joined.exitCode, 0, joined.stderr);
  t.true(joinSeconds < 30, `the join took ${joinSeconds} s under the flood`);
  const result = await flood;
  t.is(result.exitCode, 0, String(result.stderr));
  const report = JSON.parse(String(result.stdout).trim().split('\n').pop()!) as { statuses: Record<string, number>; oversize: string; sessionFailures: number };
  t.log(`join under flood: ${joinSeconds.toFixed(1)} s; flooder got ${JSON.stringify(report)}`);
  t.is(report.oversize, '8', 'a 64 KB join message is refused as too large (RESOURCE_EXHAUSTED)');
  t.true((report.statuses['8'] ?? 0) > 0, 'the flooding address ran out of join attempts (RESOURCE_EXHAUSTED)');
  const refusals = Object.values(report.statuses).reduce((a, b) => a + b, 0) + report.sessionFailures;
  const logged = readFileSync(h1.logFile, 'utf8').slice(logBefore).split('\n').filter((line) => line.includes('"msg":"refused a join"')).length;
  t.true(refusals > 50, `the flood made ${refusals} attempts`);
  t.true(logged <= 20, `refusals are logged sampled: ${logged} lines for ${refusals} refused attempts`);
  await eventually('h4 in the mesh', () => meshOf(['h1', 'h2', 'h3', 'h4']), 60_000);
});

test.serial('200 idle TCP connections per member from an outsider do not keep members or a new node out', async (t) => {
  const targets = ['h1', 'h2', 'h3', 'h4'].map((name) => `${host(name).ip}:7946`);
  const flood = execa('ip', ['netns', 'exec', host('h5').netns, process.execPath, '--disable-warning=ExperimentalWarning', fixture('idle-flood.ts'), '200', ...targets], { reject: false });
  try {
    await new Promise((resolve) => setTimeout(resolve, 5_000));
    // A member that restarts must get its connections back.
    process.kill(host('h2').pid, 'SIGKILL');
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const h2 = restartAgent(prefix, 'h2');
    lab.hosts = lab.hosts.map((h) => (h.name === 'h2' ? h2 : h));
    await waitForAgent(h2);
    await eventually('the restarted h2 to be back in the mesh', () => meshOf(['h1', 'h2', 'h3', 'h4']), 60_000);
    // A new node (h4 again, with a fresh identity) joins and is connected.
    const left = await weftOn(host('h4'), ['leave']);
    t.is(left.exitCode, 0, left.stderr);
    const token = (await weftOn(host('h3'), ['token'])).stdout.trim();
    const joined = await weftOn(host('h4'), ['join', '--token', token, host('h3').ip]);
    t.is(joined.exitCode, 0, joined.stderr);
    await eventually('the new h4 to be in the mesh', () => meshOf(['h1', 'h2', 'h3', 'h4']), 60_000);
  } finally {
    flood.kill('SIGTERM');
  }
  const result = await flood;
  const report = JSON.parse(String(result.stdout).trim().split('\n').pop() || '{}') as { opened?: number; closedByTarget?: number };
  t.log(`idle flood: ${JSON.stringify(report)}`);
  t.true((report.opened ?? 0) >= 800, `the outsider opened ${report.opened} connections`);
});
