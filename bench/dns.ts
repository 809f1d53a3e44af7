// The embedded resolver against dnsmasq, side by side in one run on this
// machine: both answer `web A` (100.64.1.2) on 127.0.0.1, each in its own
// process; dnsperf measures the maximum rate (100 queries outstanding) and,
// at a fixed 10,000 qps, the latency distribution (from dnsperf -v, per
// query). Rounds alternate between the servers so machine noise hits both.
// weft alone also answers `tasks.web` (3 records, shuffled per answer, so
// never served from its encoded-answer cache).
// Prints a table and writes bench/results/dns.json.
// Usage: node_modules/.bin/node bench/dns.ts [seconds per run] [rounds]
import { execa, type ResultPromise } from 'execa';
import { mkdirSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';

const SECONDS = Number(process.argv[2] ?? 8);
const ROUNDS = Number(process.argv[3] ?? 3);
const LATENCY_QPS = 10_000;
const DNSMASQ_PORT = 5399;
const NODE = process.execPath;

const dir = mkdtempSync(join(tmpdir(), 'weft-dns-bench-'));
const webFile = join(dir, 'web.txt');
const tasksFile = join(dir, 'tasks.txt');
writeFileSync(webFile, 'web A\n');
writeFileSync(tasksFile, 'tasks.web A\n');

const percentile = (xs: number[], p: number): number => {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
};
const median = (xs: number[]): number => percentile(xs, 50);

async function throughput(port: number, file: string): Promise<number> {
  const r = await execa('dnsperf', ['-s', '127.0.0.1', '-p', String(port), '-d', file, '-l', String(SECONDS), '-q', '100'], { reject: false });
  const qps = Number(/Queries per second:\s+([\d.]+)/.exec(String(r.stdout))?.[1]);
  const lost = Number(/Queries lost:\s+(\d+)/.exec(String(r.stdout))?.[1] ?? 0);
  if (!Number.isFinite(qps)) throw new Error(`dnsperf failed: ${r.stdout}${r.stderr}`);
  if (lost > 0) console.error(`  (port ${port}: ${lost} queries lost)`);
  return qps;
}

async function latencies(port: number, file: string): Promise<number[]> {
  const r = await execa('dnsperf', ['-s', '127.0.0.1', '-p', String(port), '-d', file, '-l', String(Math.max(3, SECONDS / 2)), '-Q', String(LATENCY_QPS), '-v'], { reject: false, maxBuffer: 256 * 1024 * 1024 });
  const out: number[] = [];
  for (const line of String(r.stdout).split('\n')) {
    const match = /^> NOERROR \S+ \S+ ([\d.]+)$/.exec(line);
    if (match) out.push(Number(match[1]) * 1000);
  }
  if (out.length === 0) throw new Error(`dnsperf -v gave no latencies: ${String(r.stderr).slice(0, 300)}`);
  return out;
}

let weft: ResultPromise | undefined;
let dnsmasq: ResultPromise | undefined;
try {
  weft = execa(NODE, ['--disable-warning=ExperimentalWarning', new URL('./fixtures/dns-server-process.ts', import.meta.url).pathname], { reject: false });
  const [portLine] = (await once(weft.stdout!, 'data')) as [Buffer];
  const weftPort = Number(String(portLine).trim());
  dnsmasq = execa('/usr/sbin/dnsmasq', ['--no-daemon', '--no-resolv', '--no-hosts', '--port', String(DNSMASQ_PORT), '--listen-address', '127.0.0.1', '--bind-interfaces', '--address=/web/100.64.1.2'], { reject: false, stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 500));
  const servers = { weft: weftPort, dnsmasq: DNSMASQ_PORT } as const;
  const qps: Record<string, number[]> = { weft: [], dnsmasq: [], 'weft tasks.web': [] };
  const lat: Record<string, number[]> = { weft: [], dnsmasq: [] };
  for (let round = 0; round < ROUNDS; round++) {
    for (const [name, port] of Object.entries(servers)) {
      qps[name]!.push(await throughput(port, webFile));
      lat[name]!.push(...(await latencies(port, webFile)));
    }
    qps['weft tasks.web']!.push(await throughput(weftPort, tasksFile));
    console.error(`round ${round + 1}/${ROUNDS}: weft ${Math.round(qps.weft!.at(-1)!)} qps, dnsmasq ${Math.round(qps.dnsmasq!.at(-1)!)} qps`);
  }
  const rows = Object.entries(qps).map(([name, values]) => ({
    server: name,
    qps: Math.round(median(values)),
    p50ms: lat[name] ? Number(percentile(lat[name], 50).toFixed(3)) : null,
    p99ms: lat[name] ? Number(percentile(lat[name], 99).toFixed(3)) : null,
  }));
  const ratio = median(qps.weft!) / median(qps.dnsmasq!);
  console.log(`\nDNS: one name on 127.0.0.1, ${SECONDS} s per run, median of ${ROUNDS} rounds; latency at ${LATENCY_QPS} qps`);
  console.log('server           max qps    p50 ms   p99 ms');
  for (const r of rows) console.log(`${r.server.padEnd(16)} ${String(r.qps).padStart(8)}  ${r.p50ms === null ? '     -' : r.p50ms.toFixed(3).padStart(7)}  ${r.p99ms === null ? '     -' : r.p99ms.toFixed(3).padStart(7)}`);
  console.log(`weft / dnsmasq: ${ratio.toFixed(2)}x (goal >= 0.8x with p99 < 2 ms)`);
  mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
  writeFileSync(new URL('./results/dns.json', import.meta.url), JSON.stringify({ seconds: SECONDS, rounds: ROUNDS, latencyQps: LATENCY_QPS, rows, ratio, samples: qps }, null, 2) + '\n');
} finally {
  weft?.kill('SIGTERM');
  dnsmasq?.kill('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
}
