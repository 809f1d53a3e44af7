// A tool or nft worker that never answers must not hold up the data plane
// forever: everything behind it (a container's start, a guard write, the
// agent's stop) would wait too. Both are killed after a deadline and fail
// like any failed command.
import test from 'ava';
import { CommandError, processRunner, run } from '../../dataplane/exec.ts';
import { NftWorker } from '../../dataplane/lb/nft-worker.ts';
import { spawnTool } from '../../dataplane/spawn-tool.ts';

/** Reads requests and never answers: a worker stuck in a kernel call. */
const SILENT_WORKER = ['/usr/bin/python3', '-c', 'import sys\nfor _ in sys.stdin: pass'] as const;

test('a command that does not exit is killed at the deadline and fails, naming why', async (t) => {
  const runner = processRunner([], 300);
  const result = await runner('sleep', ['60']);
  t.is(result.exitCode, -1);
  t.regex(result.stderr, /no exit within 0\.3 s: killed/);
  const error = await t.throwsAsync(run(runner, 'sleep', ['60']), { instanceOf: CommandError });
  t.regex(error.message, /`sleep 60` failed .*no exit within 0\.3 s/);
});

test('a command that exits in time is not affected by the deadline', async (t) => {
  t.is(await run(processRunner([], 30_000), 'echo', ['hello']), 'hello');
});

test('a tool gets its input and gives its exit code, output and errors, one trailing newline removed', async (t) => {
  const r = await spawnTool('sh', ['-c', 'read line; echo "got $line"; echo oops >&2; exit 3'], 'a b\n', 30_000);
  t.deepEqual(r, { exitCode: 3, stdout: 'got a b', stderr: 'oops' });
  t.deepEqual(await spawnTool('printf', ['two\n\n'], undefined, 30_000), { exitCode: 0, stdout: 'two\n', stderr: '' });
  const missing = await spawnTool('/nonexistent/tool', [], undefined, 30_000);
  t.is(missing.exitCode, -1);
  t.regex(missing.stderr, /cannot run \/nonexistent\/tool: .*ENOENT/);
});

test('a tool whose child keeps its output open past the deadline still ends the call', async (t) => {
  // sh goes at SIGTERM; the sleep it left behind holds stdout open until it is gone.
  const r = await spawnTool('sh', ['-c', 'sleep 60 & echo $!; wait'], undefined, 300);
  t.teardown(() => { try { process.kill(Number(r.stdout), 'SIGKILL'); } catch { /* gone */ } });
  t.is(r.exitCode, -1);
  t.regex(r.stderr, /no exit within 0\.3 s: killed/);
});

test('an nft worker that does not answer is killed, its request fails, and the next request starts a new one', async (t) => {
  const worker = new NftWorker({ command: SILENT_WORKER, replyTimeoutMs: 300 });
  t.teardown(() => worker.close());
  const item = { netns: '/proc/self/ns/net', script: 'list tables' };
  const first = worker.run([item]);
  const firstPid = worker.pid;
  await t.throwsAsync(first, { message: /killed and will be restarted: no answer within 0\.3 s with 1 request\(s\) waiting/ });
  t.is(worker.generation, 1);
  const second = worker.run([item]);
  t.not(worker.pid, undefined);
  t.not(worker.pid, firstPid, 'a new worker process took the request');
  t.is(worker.generation, 2, 'the generation changed, so the load balancer re-applies everything');
  await t.throwsAsync(second, { message: /no answer within/ });
});

/** Answers each request after a pause: slow, but making progress. */
const SLOW_WORKER = ['/usr/bin/python3', '-c', [
  'import sys, json, time',
  'for line in sys.stdin:',
  '    time.sleep(1.5)',
  '    print(json.dumps({"id": json.loads(line)["id"], "results": [{"ok": True}]}), flush=True)',
].join('\n')] as const;

test('requests queued behind each other in a worker that keeps answering are not killed, however long the queue', async (t) => {
  // Five requests of 1.5 s each: 7.5 s in all, over the 5 s limit, but never 5 s without an answer.
  const worker = new NftWorker({ command: SLOW_WORKER, replyTimeoutMs: 5_000 });
  t.teardown(() => worker.close());
  const item = { netns: '/proc/self/ns/net', script: 'list tables' };
  const results = await Promise.all(Array.from({ length: 5 }, () => worker.run([item])));
  t.deepEqual(results, Array.from({ length: 5 }, () => [{ ok: true }]));
  t.is(worker.generation, 1, 'one worker did it all');
});
