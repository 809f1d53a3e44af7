// What reaches `ip -batch` / `bridge -batch` is checked line by line: a line
// break would add a command, a `#` would cut the line short.
import test from 'ava';
import { runBatch, type Runner } from '../../dataplane/exec.ts';
import { NftWorker } from '../../dataplane/lb/nft-worker.ts';

test('a batch line with a line break or a "#" never reaches the tool', async (t) => {
  let ran = 0;
  const runner: Runner = async () => {
    ran++;
    return { exitCode: 0, stdout: '', stderr: '' };
  };
  await t.throwsAsync(runBatch(runner, 'ip', [], ['link set dev x up', 'link add y netns /run/netns/a#b']), { message: /"#"/ });
  await t.throwsAsync(runBatch(runner, 'ip', [], ['link set dev x up\nlink del dev lo']), { message: /line break/ });
  t.is(ran, 0);
  await runBatch(runner, 'ip', [], ['link set dev x up']);
  t.is(ran, 1);
});

test('an nft worker that was closed refuses work instead of starting a new process', async (t) => {
  const worker = new NftWorker();
  await worker.close();
  await t.throwsAsync(worker.run([{ netns: '/proc/self/ns/net', script: 'list tables' }]), { message: /closed/ });
  t.is(worker.pid, undefined);
});
