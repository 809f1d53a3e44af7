// The lab itself: `lab exec` reaches the right agent, a second `lab up` after
// a kill -9 of everything works, and `lab down` leaves nothing behind.
import test from 'ava';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { labUp, labDown, labDir, readLabState } from '../../deploy/lab/lab.ts';
import { listNamespacesWithPrefix } from '../../dataplane/testing/underlay.ts';
import { weft, uniquePrefix } from '../helpers/weft-cli.ts';

const prefix = uniquePrefix('l');

test.after.always(async () => {
  await labDown(prefix);
});

test.serial('weft lab exec hK -- weft members --json talks to hK\'s agent', async (t) => {
  await labUp({ hosts: 2, prefix });
  const r = await weft(['lab', 'exec', '--prefix', prefix, 'h2', '--', 'weft', 'status', '--json']);
  t.is(r.exitCode, 0, r.stderr);
  const status = JSON.parse(r.stdout) as { name: string; advertiseAddr: string; inCluster: boolean };
  t.deepEqual([status.name, status.advertiseAddr, status.inCluster], ['h2', '198.18.0.2', true]);
  const failing = await weft(['lab', 'exec', '--prefix', prefix, 'h1', '--', 'sh', '-c', 'exit 7']);
  t.is(failing.exitCode, 7, 'the command\'s exit code is passed through');
});

test.serial('lab up after every agent was killed -9 starts a fresh lab', async (t) => {
  const before = readLabState(prefix)!;
  for (const host of before.hosts) process.kill(host.pid, 'SIGKILL');
  const state = await labUp({ hosts: 2, prefix });
  t.is(state.hosts.length, 2);
  t.not(state.token, before.token, 'a new cluster was created');
  const r = await weft(['lab', 'exec', '--prefix', prefix, 'h1', '--', 'weft', 'members', '--json']);
  t.is((JSON.parse(r.stdout) as unknown[]).length, 2);
});

test.serial('hosts joining side by side through h1 each become one member, seen by every host', async (t) => {
  // Four joins in flight at once, whatever the core count: they all go through h1's admission.
  const state = await labUp({ hosts: 5, prefix, joinConcurrency: 4 });
  for (const host of state.hosts) {
    const r = await weft(['lab', 'exec', '--prefix', prefix, host.name, '--', 'weft', 'members', '--json']);
    t.is(r.exitCode, 0, r.stderr);
    const members = JSON.parse(r.stdout) as Array<{ nodeId: string; name: string; state: string }>;
    t.deepEqual(members.map((m) => m.name).sort(), ['h1', 'h2', 'h3', 'h4', 'h5'], `members seen by ${host.name}`);
    t.is(new Set(members.map((m) => m.nodeId)).size, 5, `one node per host on ${host.name}`);
  }
});

test.serial('lab up refuses a join concurrency that is not a whole number from 1 to 64', async (t) => {
  // Refused before anything is touched: the lab of the tests before stays up.
  for (const joinConcurrency of [0, 1.5, 65]) {
    await t.throwsAsync(labUp({ hosts: 2, prefix, joinConcurrency }), { message: /join concurrency must be an integer from 1 to 64/ });
  }
});

test.serial('lab up stops at an agent that exits, naming it, without waiting out the deadline', async (t) => {
  // Unknown config keys are refused: every agent exits right after it starts.
  const error = await t.throwsAsync(labUp({ hosts: 2, prefix, agentConfig: { bogus: 1 } }));
  t.regex(error.message, /gave up waiting for the agent of h\d .*: the agent of h\d exited/);
  t.notRegex(error.message, /timed out/);
  t.regex(error.message, /Unrecognized key: "bogus"/, 'the agent\'s own reason comes with it, from its log');
});

test.serial('lab down removes every namespace, process and file of the lab, and what is mounted in it', async (t) => {
  const state = readLabState(prefix)!;
  // What a lab host's dockerd killed mid-test leaves: its containers' namespaces mounted under its root.
  const leftMount = join(labDir(prefix), 'h1', 'docker', 'exec', 'netns');
  mkdirSync(leftMount, { recursive: true });
  t.is((await execa('mount', ['-t', 'tmpfs', 'none', leftMount], { reject: false })).exitCode, 0);
  const r = await weft(['lab', 'down', '--prefix', prefix]);
  t.is(r.exitCode, 0, r.stderr);
  t.deepEqual(await listNamespacesWithPrefix(prefix), []);
  t.false(existsSync(labDir(prefix)));
  t.false(readFileSync('/proc/self/mounts', 'utf8').includes(labDir(prefix)), 'nothing is left mounted there');
  for (const host of state.hosts) t.throws(() => process.kill(host.pid, 0), undefined, `agent of ${host.name} is gone`);
  const again = await weft(['lab', 'down', '--prefix', prefix]);
  t.is(again.exitCode, 0, 'lab down twice is harmless');
});
