// How fast the CLI answers: wall time and peak RSS of `weft --version`,
// `weft --help` and `weft node ls` (alias `weft members`; against a real agent
// on loopback, in a cluster of one, inside a network namespace of the bench's
// own: an agent that inits makes its gateway bridge and nftables tables where
// it runs), next to `node -e 0` measured in the same
// run, so the figures read as "what weft adds to starting Node". Each command
// runs through bin/weft, as a user runs it. Runs go round robin over the
// commands so that a burst of load elsewhere on the machine hits all of them
// alike.
// "warm": the compile cache (agent/cli/entry.mjs) already holds the CLI, as
// after the first run. "cold": an empty cache, as the first run after an
// install or upgrade.
// Peak RSS comes from GNU time (%M, the child's maximum resident set size).
// Prints a table and writes bench/results/cli.json.
// Usage: node_modules/.bin/node bench/cli.ts [warm runs per command (default 30)] [cold runs (default 3)]
import { execa, type ResultPromise } from 'execa';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { privateNetns, type PrivateNetns } from '../test/helpers/private-netns.ts';

const WARM_RUNS = Number(process.argv[2] ?? 30);
const COLD_RUNS = Number(process.argv[3] ?? 3);
const NODE = process.execPath;
const WEFT = fileURLToPath(new URL('../bin/weft', import.meta.url));
const GNU_TIME = '/usr/bin/time';
const GOAL = { wallMs: 150, rssMb: 60 };

if ((await execa(GNU_TIME, ['-f', '%M', 'true'], { reject: false })).exitCode !== 0) {
  console.error('bench/cli.ts needs GNU time (/usr/bin/time): apt-get install time');
  process.exit(2);
}

const dir = mkdtempSync(join(tmpdir(), 'weft-cli-bench-'));
const socket = join(dir, 'agent.sock');
const port = 30_000 + Math.floor(Math.random() * 20_000);
let agent: ResultPromise | undefined;
let netns: PrivateNetns | undefined;

interface Command { name: string; argv: string[]; weft: boolean }
const COMMANDS: Command[] = [
  { name: 'node -e 0', argv: [NODE, '-e', '0'], weft: false },
  { name: 'weft --version', argv: [WEFT, '--version'], weft: true },
  { name: 'weft --help', argv: [WEFT, '--help'], weft: true },
  { name: 'weft node ls', argv: [WEFT, 'node', 'ls'], weft: true },
];

interface Sample { wallMs: number; rssMb: number }

/** One run under GNU time; fails loudly if the command does not succeed. */
async function measure(command: Command, cacheHome: string): Promise<Sample> {
  const rssFile = join(dir, 'rss.txt');
  const started = performance.now();
  const r = await execa(GNU_TIME, ['-o', rssFile, '-f', '%M', ...command.argv], {
    reject: false,
    env: { WEFT_SOCKET: socket, XDG_CACHE_HOME: cacheHome },
    extendEnv: true,
  });
  const wallMs = performance.now() - started;
  if (r.exitCode !== 0) throw new Error(`${command.name} failed (exit ${r.exitCode}): ${r.stderr}`);
  const rssKb = Number(readFileSync(rssFile, 'utf8').trim().split('\n').pop());
  return { wallMs, rssMb: rssKb / 1024 };
}

const percentile = (sorted: number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;

interface Summary { runs: number; wallP50Ms: number; wallP99Ms: number; rssP50Mb: number; rssMaxMb: number }
function summarize(samples: Sample[]): Summary {
  const wall = samples.map((s) => s.wallMs).sort((a, b) => a - b);
  const rss = samples.map((s) => s.rssMb).sort((a, b) => a - b);
  return { runs: samples.length, wallP50Ms: percentile(wall, 50), wallP99Ms: percentile(wall, 99), rssP50Mb: percentile(rss, 50), rssMaxMb: rss[rss.length - 1] ?? NaN };
}

async function startAgent(): Promise<void> {
  const nsPrefix = `wcb${randomBytes(3).toString('hex')}`;
  netns = await privateNetns('cb');
  agent = execa(...netns.wrap(WEFT, ['--api-socket', socket, 'agent', '--docker-plugin-dir', '', '--data-dir', join(dir, 'data'), '--listen-addr', `127.0.0.1:${port}`, '--gossip-port', String(port + 1),
    '--advertise-addr', '127.0.0.1', '--name', 'clibench', '--ns-prefix', nsPrefix, '--log-level', 'warn']), { reject: false, env: { XDG_CACHE_HOME: join(dir, 'agent-cache') } });
  let exited = false;
  void agent.then(() => {
    exited = true;
  });
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const status = await execa(WEFT, ['--api-socket', socket, 'status'], { reject: false });
    if (status.exitCode === 0) {
      const init = await execa(WEFT, ['--api-socket', socket, 'init'], { reject: false });
      if (init.exitCode !== 0) throw new Error(`weft init failed: ${init.stderr}`);
      return;
    }
    if (exited) break;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  agent.kill('SIGTERM');
  const result = await agent;
  throw new Error(`the agent did not answer on ${socket}: ${String(result.stderr)}`);
}

try {
  await startAgent();
  const load = loadavg();

  // Cold: every run gets an empty cache directory of its own.
  const cold = new Map<string, Sample[]>(COMMANDS.filter((c) => c.weft).map((c) => [c.name, []]));
  for (let i = 0; i < COLD_RUNS; i++) {
    for (const command of COMMANDS.filter((c) => c.weft)) {
      const fresh = mkdtempSync(join(dir, 'cold-'));
      cold.get(command.name)!.push(await measure(command, fresh));
      rmSync(fresh, { recursive: true, force: true });
    }
  }

  // Warm: one shared cache, filled by a first run that is not counted.
  const warmCache = join(dir, 'warm-cache');
  for (const command of COMMANDS) await measure(command, warmCache);
  const warm = new Map<string, Sample[]>(COMMANDS.map((c) => [c.name, []]));
  for (let i = 0; i < WARM_RUNS; i++) for (const command of COMMANDS) warm.get(command.name)!.push(await measure(command, warmCache));

  const rows = COMMANDS.map((command) => {
    const w = summarize(warm.get(command.name)!);
    const c = command.weft ? summarize(cold.get(command.name)!) : undefined;
    return { command: command.name, warm: w, cold: c };
  });
  const base = rows[0]!.warm;
  const fmt = (n: number | undefined): string => (n === undefined || Number.isNaN(n) ? '-' : n.toFixed(0));
  const fmt1 = (n: number | undefined): string => (n === undefined || Number.isNaN(n) ? '-' : n.toFixed(1));
  const table = [
    ['command', 'p50 ms', 'p99 ms', '+node ms', 'RSS p50 MB', 'RSS max MB', 'cold p50 ms', 'cold RSS MB'],
    ...rows.map((r) => [r.command, fmt(r.warm.wallP50Ms), fmt(r.warm.wallP99Ms), r.command === 'node -e 0' ? '-' : fmt(r.warm.wallP50Ms - base.wallP50Ms),
      fmt1(r.warm.rssP50Mb), fmt1(r.warm.rssMaxMb), fmt(r.cold?.wallP50Ms), fmt1(r.cold?.rssP50Mb)]),
  ];
  const widths = table[0]!.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
  console.log(`CLI response, ${WARM_RUNS} warm runs and ${COLD_RUNS} cold runs per command (load average ${load.map((l) => l.toFixed(2)).join(' ')}, ${availableParallelism()} CPUs)`);
  for (const row of table) console.log(row.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  '));
  const members = rows.find((r) => r.command === 'weft node ls')!.warm;
  console.log(`goal for weft node ls: <= ${GOAL.wallMs} ms and <= ${GOAL.rssMb} MB; measured p50 ${fmt(members.wallP50Ms)} ms, ${fmt1(members.rssP50Mb)} MB`);

  mkdirSync('bench/results', { recursive: true });
  writeFileSync('bench/results/cli.json', JSON.stringify({
    date: new Date().toISOString(),
    node: process.version,
    cpus: availableParallelism(),
    loadAverage: load,
    warmRuns: WARM_RUNS,
    coldRuns: COLD_RUNS,
    goal: GOAL,
    commands: rows,
  }, null, 2) + '\n');
} finally {
  agent?.kill('SIGTERM');
  await agent?.catch(() => undefined);
  await netns?.remove();
  rmSync(dir, { recursive: true, force: true });
}
