// The daemon on loopback, in a network namespace of the test's own (an agent
// that inits makes its gateway bridge and nftables tables where it runs):
// exclusive data dir and socket, file permissions of secrets, clean shutdown
// on SIGTERM.
import test from 'ava';
import { execa, type ResultPromise } from 'execa';
import { mkdtempSync, statSync, readdirSync, existsSync, readFileSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CLI_MAIN, weft, eventually } from '../helpers/weft-cli.ts';
import { privateNetns, type PrivateNetns } from '../helpers/private-netns.ts';

const base = mkdtempSync(join(tmpdir(), 'weft-daemon-'));
const port = 20_000 + Math.floor(Math.random() * 20_000);
const running: ResultPromise[] = [];
// An agent answers in about a second on an idle machine; a loaded one (other
// test runs, busy loops on both cores) has been seen to need over 30 s.
const AGENT_START_MS = 120_000;

let netns: PrivateNetns;

test.before(async () => {
  netns = await privateNetns('dd');
});

/** `moduleTrace`: a file the agent lists every module it loaded in when it exits (test/helpers/module-trace.mjs). */
function startAgent(name: string, dataDir: string, socket: string, offset: number, moduleTrace?: string): ResultPromise {
  const trace = moduleTrace === undefined ? [] : ['--import', TRACE_HOOK];
  const child = execa(...netns.wrap(process.execPath, ['--disable-warning=ExperimentalWarning', ...trace, CLI_MAIN, '--api-socket', socket, 'agent', '--docker-plugin-dir', '', '--data-dir', dataDir,
    '--listen-addr', `127.0.0.1:${port + offset}`, '--gossip-port', String(port + offset + 1), '--advertise-addr', '127.0.0.1', '--name', name]), { reject: false, env: moduleTrace === undefined ? {} : { WEFT_MODULE_TRACE: moduleTrace } });
  running.push(child);
  return child;
}

/**
 * Signals the agent and waits for its exit, at most 60 s (the agent's own
 * stop deadline is 30 s): a stop that hangs fails the test with the agent's
 * last words instead of stalling the whole run.
 */
async function stopAgent(child: ResultPromise, signal: NodeJS.Signals): Promise<Awaited<ResultPromise>> {
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  const result = await child;
  clearTimeout(timer);
  if (signal !== 'SIGKILL' && result.signal === 'SIGKILL') throw new Error(`the agent did not exit within 60 s of ${signal}; it last wrote:\n${String(result.stdout).slice(-3000)}\n${String(result.stderr).slice(-2000)}`);
  return result;
}

test.after.always(async () => {
  for (const child of running) child.kill('SIGKILL');
  await netns?.remove();
});

const socketA = join(base, 'a.sock');
const dataA = join(base, 'a');
const traceA = join(base, 'a-modules.txt');
const TRACE_HOOK = fileURLToPath(new URL('../helpers/module-trace.mjs', import.meta.url));

test.serial('the agent starts, answers on its socket (0660), and keeps secrets in 0600 files', async (t) => {
  startAgent('a', dataA, socketA, 0, traceA);
  await eventually('agent a to answer', async () => (await weft(['status'], { WEFT_SOCKET: socketA })).exitCode === 0, AGENT_START_MS);
  t.is(statSync(socketA).mode & 0o777, 0o660);
  const init = await weft(['init'], { WEFT_SOCKET: socketA });
  t.is(init.exitCode, 0, init.stderr);
  t.regex(init.stdout, /WEFT-1-[A-Z2-7]{52}-[A-Z2-7]{52}/);
  const checkTree = (dir: string): void => {
    t.is(statSync(dir).mode & 0o777, 0o700, `${dir}/ is 0700`);
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) checkTree(path);
      else t.is(statSync(path).mode & 0o777, 0o600, `${path} is 0600`);
    }
  };
  for (const dir of ['identity', 'cluster']) checkTree(join(dataA, dir));
  const again = await weft(['init'], { WEFT_SOCKET: socketA });
  t.is(again.exitCode, 1);
  t.regex(again.stderr, /already a member of cluster .*weft leave/);
});

test.serial('a second agent on the same data dir is refused with the holder named', async (t) => {
  const second = await startAgent('b', dataA, join(base, 'b.sock'), 10);
  t.not(second.exitCode, 0);
  t.regex(String(second.stderr), /another weft agent \(pid \d+\) is already using data dir/);
});

test.serial('a second agent on the same socket is refused', async (t) => {
  const second = await startAgent('c', join(base, 'c'), socketA, 20);
  t.not(second.exitCode, 0);
  t.regex(String(second.stderr), /another weft agent is already listening on/);
});

test.serial('SIGTERM shuts the agent down cleanly and a restart resumes the same cluster identity', async (t) => {
  const before = JSON.parse((await weft(['status', '--json'], { WEFT_SOCKET: socketA })).stdout) as { nodeId: string; clusterId: string };
  const result = await stopAgent(running[0]!, 'SIGTERM');
  t.is(result.exitCode, 0, String(result.stdout).slice(-3000));
  t.false(existsSync(join(dataA, 'agent.pid')), 'the data dir lock is released');
  // Metrics are opt-in (--metrics-addr): without them prom-client stays unloaded.
  const loaded = readFileSync(traceA, 'utf8').split('\n');
  t.true(loaded.some((url) => url.endsWith('/agent/daemon/agent.ts')), 'the trace saw the daemon');
  t.deepEqual(loaded.filter((url) => /\/node_modules\/prom-client\/|\/agent\/metrics\/(exposition|metrics-server)\.ts$/.test(url)), []);
  startAgent('a', dataA, socketA, 0);
  const after = await eventually('agent a to come back', async () => {
    const r = await weft(['status', '--json'], { WEFT_SOCKET: socketA });
    return r.exitCode === 0 ? (JSON.parse(r.stdout) as { nodeId: string; clusterId: string }) : undefined;
  }, AGENT_START_MS);
  t.is(after.nodeId, before.nodeId);
  t.is(after.clusterId, before.clusterId);
});

test.serial('after kill -9 the stale lock and socket do not block a restart', async (t) => {
  await stopAgent(running[running.length - 1]!, 'SIGKILL');
  startAgent('a', dataA, socketA, 0);
  await eventually('agent a to restart after kill -9', async () => (await weft(['status'], { WEFT_SOCKET: socketA })).exitCode === 0, AGENT_START_MS);
  t.pass();
});

test.serial('a tables file a crash left empty stops the agent with the file named, instead of a silent reset', async (t) => {
  await stopAgent(running[running.length - 1]!, 'SIGTERM');
  const cluster = join(dataA, 'cluster');
  const tableFiles = readdirSync(cluster).filter((n) => n.startsWith('tables') || n === 'lamport');
  t.true(tableFiles.length > 0, 'the agent saved its tables');
  for (const name of tableFiles) truncateSync(join(cluster, name), 0);
  const restarted = startAgent('a', dataA, socketA, 0);
  const exited = await Promise.race([restarted, new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 30_000))]);
  if (!exited) restarted.kill('SIGKILL');
  t.truthy(exited, 'the agent must not start on an emptied tables file');
  t.not(exited?.exitCode, 0);
  t.regex(String(exited?.stderr), /state file \S+cluster\/\S+ is corrupt: it is empty\. The agent will not start on it/);
});
