// Detaching deletes a link with one command and reads the outcome from ip's
// answer: gone already (or its namespace gone) is not an error, anything else is.
import test from 'ava';
import type { Runner } from '../../dataplane/exec.ts';
import { CommandError } from '../../dataplane/exec.ts';
import { deleteLinkIfPresent } from '../../dataplane/links.ts';
import { netnsByName } from '../../dataplane/netns.ts';

const answering = (exitCode: number, stderr: string, calls: string[][] = []): Runner => async (file, args) => {
  calls.push([file, ...args]);
  return { exitCode, stdout: '', stderr };
};

test('a link that is there is deleted with one command', async (t) => {
  const calls: string[][] = [];
  t.true(await deleteLinkIfPresent(answering(0, '', calls), netnsByName('wt-n5'), 'v0123'));
  t.deepEqual(calls, [['ip', '-n', 'wt-n5', 'link', 'del', 'dev', 'v0123']]);
  await deleteLinkIfPresent(answering(0, '', calls), 'own', 'g0123');
  t.deepEqual(calls[1], ['ip', 'link', 'del', 'dev', 'g0123']);
});

test('a missing link or a namespace that cannot be entered is no link; any other failure is an error', async (t) => {
  t.false(await deleteLinkIfPresent(answering(1, 'Cannot find device "v0123"'), netnsByName('wt-n5'), 'v0123'));
  // Every command fails here, the namespace check (ip -n wt-n5 link show dev lo) too.
  t.false(await deleteLinkIfPresent(answering(255, 'Cannot open network namespace "wt-n5": No such file or directory'), netnsByName('wt-n5'), 'v0123'));
  t.false(await deleteLinkIfPresent(answering(255, 'setting the network namespace "wt-n5" failed: Invalid argument'), netnsByName('wt-n5'), 'v0123'));
  await t.throwsAsync(deleteLinkIfPresent(answering(2, 'RTNETLINK answers: Operation not permitted'), 'own', 'g0123'), { instanceOf: CommandError, message: /Operation not permitted/ });
  // The namespace answers, the delete does not: an error, not "no link".
  const enterable: Runner = async (_file, args) => (args.includes('del')
    ? { exitCode: 2, stdout: '', stderr: 'RTNETLINK answers: Device or resource busy' }
    : { exitCode: 0, stdout: '[]', stderr: '' });
  await t.throwsAsync(deleteLinkIfPresent(enterable, netnsByName('wt-n5'), 'v0123'), { instanceOf: CommandError, message: /busy/ });
});
