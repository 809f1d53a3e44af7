// The lab itself: `lab exec` reaches the right agent, a second `lab up` after
// a kill -9 of everything works, and `lab down` leaves nothing behind.
import test from 'ava';
import { existsSync } from 'node:fs';
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

test.serial('lab down removes every namespace, process and file of the lab', async (t) => {
  const state = readLabState(prefix)!;
  const r = await weft(['lab', 'down', '--prefix', prefix]);
  t.is(r.exitCode, 0, r.stderr);
  t.deepEqual(await listNamespacesWithPrefix(prefix), []);
  t.false(existsSync(labDir(prefix)));
  for (const host of state.hosts) t.throws(() => process.kill(host.pid, 0), undefined, `agent of ${host.name} is gone`);
  const again = await weft(['lab', 'down', '--prefix', prefix]);
  t.is(again.exitCode, 0, 'lab down twice is harmless');
});
