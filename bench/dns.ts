// The embedded resolver against dnsmasq, side by side in one run on this
// machine: both answer `web A` (100.64.1.2) on 127.0.0.1, each in its own
// process. dnsperf (one client, one thread) measures, per query (-v), the
// rate and latency closed-loop with 20, 50 and 100 queries outstanding, and
// open-loop at fixed rates. Two CPU layouts: "pinned" (each server alone on
// the last CPU, dnsperf on CPU 0: each gets its own core) and "shared" (the
// scheduler's choice, dnsperf competing for the same two cores). Rounds
// alternate which server goes first; medians are reported.
// weft alone also answers `tasks.web` (3 records, re-shuffled per answer from
// the cache) and forwards `x.outside.test` to the same dnsmasq (two hops).
// Prints a table and writes bench/results/dns.json.
// Usage: node_modules/.bin/node bench/dns.ts [seconds per run] [rounds] [pinned,shared]
import { execa, type ResultPromise } from 'execa';
import { mkdirSync, writeFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { createSocket } from 'node:dgram';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';

for (const tool of ['dnsperf', '/usr/sbin/dnsmasq']) {
  if ((await execa('sh', ['-c', `command -v ${tool}`], { reject: false })).exitCode !== 0) {
    console.error(`bench/dns.ts needs ${tool}: apt-get install dnsperf dnsmasq-base`);
    process.exit(2);
  }
}
const SECONDS = Number(process.argv[2] ?? 8);
const ROUNDS = Number(process.argv[3] ?? 3);
const CPUS = availableParallelism();
const canPin = CPUS >= 2 && (await execa('taskset', ['--version'], { reject: false })).exitCode === 0;
const LAYOUTS = (process.argv[4] ?? 'pinned,shared').split(',').filter((l) => l === 'shared' || (l === 'pinned' && canPin)) as ('pinned' | 'shared')[];
const OUTSTANDING = [20, 50, 100];
const RATES = [10_000, 50_000];
const P99_GOAL_MS = 2;
const NODE = process.execPath;

const dir = mkdtempSync(join(tmpdir(), 'weft-dns-bench-'));
const files = { web: join(dir, 'web.txt'), tasks: join(dir, 'tasks.txt'), outside: join(dir, 'outside.txt') };
writeFileSync(files.web, 'web A\n');
writeFileSync(files.tasks, 'tasks.web A\n');
writeFileSync(files.outside, 'x.outside.test A\n');

const percentile = (sorted: number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
const median = (xs: number[]): number => percentile([...xs].sort((a, b) => a - b), 50);

interface Run { qps: number; lost: number; avgMs: number; p50Ms: number; p99Ms: number; p999Ms: number }
type Load = { outstanding: number } | { rate: number };
const loadName = (l: Load): string => ('rate' in l ? `${l.rate / 1000}k qps` : `-q ${l.outstanding}`);

/** One dnsperf run; latency percentiles from the per-query lines of -v. */
async function dnsperf(port: number, file: string, seconds: number, load: Load, pinned: boolean): Promise<Run> {
  const args = ['-s', '127.0.0.1', '-p', String(port), '-d', file, '-l', String(seconds), '-c', '1', '-T', '1', '-b', '4096', '-v'];
  if ('rate' in load) args.push('-Q', String(load.rate), '-q', '1000');
  else args.push('-q', String(load.outstanding));
  // Per-query lines go to a file: a pipe into this process would wake it 50,000 times a second.
  const output = join(dir, 'dnsperf.out');
  const r = pinned
    ? await execa('taskset', ['-c', '0', 'dnsperf', ...args], { reject: false, stdout: { file: output } })
    : await execa('dnsperf', args, { reject: false, stdout: { file: output } });
  const out = readFileSync(output, 'utf8');
  rmSync(output);
  const qps = Number(/Queries per second:\s+([\d.]+)/.exec(out)?.[1]);
  if (!Number.isFinite(qps)) throw new Error(`dnsperf failed: ${out.slice(-500)}${r.stderr}`);
  const latencies: number[] = [];
  for (const match of out.matchAll(/^> \S+ \S+ \S+ ([\d.]+)$/gm)) latencies.push(Number(match[1]) * 1000);
  latencies.sort((a, b) => a - b);
  return {
    qps,
    lost: Number(/Queries lost:\s+(\d+)/.exec(out)?.[1] ?? 0),
    avgMs: Number(/Average Latency \(s\):\s+([\d.]+)/.exec(out)?.[1] ?? NaN) * 1000,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    p999Ms: percentile(latencies, 99.9),
  };
}

/** A port free for both UDP and TCP on 127.0.0.1 (dnsmasq binds both). */
async function freePort(): Promise<number> {
  for (;;) {
    const udp = createSocket('udp4');
    await new Promise<void>((resolve) => udp.bind(0, '127.0.0.1', resolve));
    const port = udp.address().port;
    const tcp = createServer();
    const ok = await new Promise<boolean>((resolve) => {
      tcp.once('error', () => resolve(false));
      tcp.listen(port, '127.0.0.1', () => resolve(true));
    });
    udp.close();
    if (ok) {
      await new Promise((resolve) => tcp.close(resolve));
      return port;
    }
  }
}

async function startWeft(upstream?: string): Promise<{ process: ResultPromise; port: number }> {
  const child = execa(NODE, ['--disable-warning=ExperimentalWarning', new URL('./fixtures/dns-server-process.ts', import.meta.url).pathname, ...(upstream ? [upstream] : [])], { reject: false });
  const [line] = (await once(child.stdout!, 'data')) as [Buffer];
  return { process: child, port: Number(String(line).trim()) };
}

/** Moves every thread of a process onto these CPUs. */
async function pin(pid: number | undefined, cpus: string): Promise<void> {
  if (pid === undefined) throw new Error('no pid to pin');
  const r = await execa('taskset', ['-a', '-p', '-c', cpus, String(pid)], { reject: false });
  if (r.exitCode !== 0) throw new Error(`taskset failed: ${r.stderr}`);
}

async function waitAnswering(port: number, name: string, expected: string): Promise<void> {
  for (let tries = 0; ; tries++) {
    const r = await execa('dig', ['@127.0.0.1', '-p', String(port), '+short', '+time=1', '+tries=1', name], { reject: false });
    if (String(r.stdout).trim() === expected) return;
    if (tries > 20) throw new Error(`the server on port ${port} does not answer ${name}: ${r.stdout}${r.stderr}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

const children: ResultPromise[] = [];
try {
  const dnsmasqPort = await freePort();
  const dnsmasq = execa('/usr/sbin/dnsmasq', ['--no-daemon', '--no-resolv', '--no-hosts', '--port', String(dnsmasqPort), '--listen-address', '127.0.0.1', '--bind-interfaces', '--address=/web/100.64.1.2', '--address=/outside.test/198.18.7.7'], { reject: false, stdio: 'ignore' });
  children.push(dnsmasq);
  const weft = await startWeft();
  children.push(weft.process);
  const forwarding = await startWeft(`127.0.0.1:${dnsmasqPort}`);
  children.push(forwarding.process);
  await waitAnswering(dnsmasqPort, 'web', '100.64.1.2');
  await waitAnswering(weft.port, 'web', '100.64.1.2');
  await waitAnswering(forwarding.port, 'x.outside.test', '198.18.7.7');

  interface Case { server: string; port: number; file: string; loads: Load[] }
  const cases: Case[] = [
    { server: 'dnsmasq web', port: dnsmasqPort, file: files.web, loads: [...OUTSTANDING.map((outstanding) => ({ outstanding })), ...RATES.map((rate) => ({ rate }))] },
    { server: 'weft web', port: weft.port, file: files.web, loads: [...OUTSTANDING.map((outstanding) => ({ outstanding })), ...RATES.map((rate) => ({ rate }))] },
    { server: 'weft tasks.web', port: weft.port, file: files.tasks, loads: [{ outstanding: 100 }] },
    { server: 'weft forwarded', port: forwarding.port, file: files.outside, loads: [{ outstanding: 100 }] },
  ];
  const samples = new Map<string, Run[]>(); // layout|server|load
  const record = (key: string, run: Run): void => {
    if (!samples.has(key)) samples.set(key, []);
    samples.get(key)!.push(run);
  };
  for (const layout of LAYOUTS) {
    const last = String(CPUS - 1);
    for (const child of children) await pin(child.pid, layout === 'pinned' ? last : `0-${last}`);
    await pin(process.pid, layout === 'pinned' ? '0' : `0-${last}`); // this process too keeps off the servers' CPU
    for (let round = 0; round < ROUNDS; round++) {
      const order = round % 2 === 0 ? cases : [cases[1]!, cases[0]!, ...cases.slice(2)];
      for (const c of order) {
        for (const load of c.loads) {
          const seconds = 'rate' in load ? Math.max(3, SECONDS / 2) : SECONDS;
          record(`${layout}|${c.server}|${loadName(load)}`, await dnsperf(c.port, c.file, seconds, load, layout === 'pinned'));
        }
      }
      const q100 = (server: string) => Math.round(samples.get(`${layout}|${server}|-q 100`)!.at(-1)!.qps);
      console.error(`${layout} round ${round + 1}/${ROUNDS}: dnsmasq ${q100('dnsmasq web')}, weft ${q100('weft web')}, weft tasks.web ${q100('weft tasks.web')}, weft forwarded ${q100('weft forwarded')} qps at -q 100`);
    }
  }

  const table = [...samples].map(([key, runs]) => {
    const [layout, server, load] = key.split('|') as [string, string, string];
    return {
      layout,
      server,
      load,
      qps: Math.round(median(runs.map((r) => r.qps))),
      avgMs: Number(median(runs.map((r) => r.avgMs)).toFixed(3)),
      p50Ms: Number(median(runs.map((r) => r.p50Ms)).toFixed(3)),
      p99Ms: Number(median(runs.map((r) => r.p99Ms)).toFixed(3)),
      p999Ms: Number(median(runs.map((r) => r.p999Ms)).toFixed(3)),
      lost: runs.reduce((a, r) => a + r.lost, 0),
      samples: runs.map((r) => Math.round(r.qps)),
    };
  });
  const summaries = LAYOUTS.map((layout) => {
    const rows = (server: string) => table.filter((r) => r.layout === layout && r.server === server && r.load.startsWith('-q'));
    const max = (server: string) => Math.max(...rows(server).map((r) => r.qps));
    const withinGoal = (server: string) => Math.max(0, ...rows(server).filter((r) => r.p99Ms < P99_GOAL_MS).map((r) => r.qps));
    return {
      layout,
      maxRatio: max('weft web') / max('dnsmasq web'),
      withinGoalRatio: withinGoal('weft web') / withinGoal('dnsmasq web'),
      weftWithinGoal: withinGoal('weft web'),
      dnsmasqWithinGoal: withinGoal('dnsmasq web'),
    };
  });

  console.log(`\nDNS on 127.0.0.1 (${CPUS} CPUs), dnsperf -c 1 -T 1 -v; ${SECONDS} s per closed-loop run, median of ${ROUNDS} rounds`);
  console.log('layout  server           load           qps     avg ms   p50 ms   p99 ms  p99.9 ms   lost');
  for (const r of table) {
    console.log(`${r.layout.padEnd(7)} ${r.server.padEnd(16)} ${r.load.padEnd(10)} ${String(r.qps).padStart(7)}  ${r.avgMs.toFixed(3).padStart(7)}  ${r.p50Ms.toFixed(3).padStart(7)}  ${r.p99Ms.toFixed(3).padStart(7)}  ${r.p999Ms.toFixed(3).padStart(7)}  ${String(r.lost).padStart(5)}`);
  }
  for (const s of summaries) {
    console.log(`${s.layout}: weft/dnsmasq max qps ${s.maxRatio.toFixed(2)}x; best qps with p99 < ${P99_GOAL_MS} ms: weft ${s.weftWithinGoal}, dnsmasq ${s.dnsmasqWithinGoal} (${s.withinGoalRatio.toFixed(2)}x; goal >= 0.8x)`);
  }
  mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
  writeFileSync(new URL('./results/dns.json', import.meta.url), JSON.stringify({ cpus: CPUS, seconds: SECONDS, rounds: ROUNDS, outstanding: OUTSTANDING, rates: RATES, p99GoalMs: P99_GOAL_MS, summaries, table }, null, 2) + '\n');
} finally {
  for (const child of children) child.kill('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
}
