// Lab convergence: an endpoint created on one host of a lab → its FDB and
// neighbour entries present on every other host, p50/p99 over N trials.
// Propagation starts when the origin writes the endpoint to its table: the
// time of its "endpoint published" log line (same machine, same clock).
// Arrival is observed with `bridge monitor fdb` / `ip monitor neigh` in each
// host's network namespace (event timestamps, no polling). The FDB row shows
// the receivers' first batch alone: the reconciler writes FDB entries, then
// neighbour entries, one process each (docs/architecture.md, "Where the time
// goes"). Prints a table and writes bench/results/lab-convergence-<hosts>.json.
// Usage: node bench/lab-convergence.ts [trials] [hosts]
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { writeFileSync, mkdirSync, readFileSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { labUp, labDown, callAgent, type LabHost } from '../deploy/lab/lab.ts';
import { uniquePrefix } from '../test/helpers/weft-cli.ts';

const TRIALS = Number(process.argv[2] ?? 100);
const HOSTS = Number(process.argv[3] ?? 5);
if (!Number.isInteger(TRIALS) || TRIALS < 1 || !Number.isInteger(HOSTS) || HOSTS < 2) throw new Error('usage: node bench/lab-convergence.ts [trials >= 1] [hosts >= 2]');
const prefix = uniquePrefix('v');

interface EndpointInfo { name: string; ip: string; mac: string; sandbox: string }
interface SandboxInfo { netns: string; endpoints: EndpointInfo[] }

/** Arrival times of FDB (by MAC) and neighbour (by IP) additions seen on one host. */
class Watcher {
  readonly seen = new Map<string, number>();
  readonly #children: ChildProcess[] = [];
  readonly #waiters = new Map<string, () => void>();

  constructor(netns: string) {
    for (const args of [['bridge', 'monitor', 'fdb'], ['ip', 'monitor', 'neigh']]) {
      const child = spawn('ip', ['netns', 'exec', netns, ...args], { stdio: ['ignore', 'pipe', 'ignore'] });
      this.#children.push(child);
      createInterface({ input: child.stdout! }).on('line', (line) => this.#onLine(line));
    }
  }

  #onLine(line: string): void {
    const at = epochMs();
    if (line.startsWith('Deleted')) return;
    const key = line.split(' ')[0] ?? '';
    if (!this.seen.has(key)) this.seen.set(key, at);
    this.#waiters.get(key)?.();
  }

  wait(key: string, timeoutMs: number): Promise<number> {
    const known = this.seen.get(key);
    if (known !== undefined) return Promise.resolve(known);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${key} did not arrive within ${timeoutMs} ms`)), timeoutMs);
      this.#waiters.set(key, () => {
        clearTimeout(timer);
        this.#waiters.delete(key);
        resolve(this.seen.get(key)!);
      });
    });
  }

  stop(): void {
    for (const child of this.#children) child.kill();
  }
}

/** Wall-clock milliseconds with sub-millisecond resolution: comparable with the agents' log times. */
const epochMs = (): number => performance.timeOrigin + performance.now();

/** When `origin` wrote the endpoint with `ip` to its table: its "endpoint published" log line. */
function publishedAt(origin: LabHost, ip: string): number {
  for (const line of readFileSync(origin.logFile, 'utf8').split('\n').reverse()) {
    if (!line.includes('"endpoint published"') || !line.includes(`"ip":"${ip}"`)) continue;
    return (JSON.parse(line) as { time: number }).time;
  }
  throw new Error(`${origin.name} logged no "endpoint published" for ${ip} (an agent from before this benchmark?)`);
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
}

const fromWrite: number[] = [];
const fdbFromWrite: number[] = [];
const fromRequest: number[] = [];
const watchers: Watcher[] = [];
try {
  const lab = await labUp({ hosts: HOSTS, prefix });
  const network = await callAgent<{ vni: number }>(lab.hosts[0]!, 'NetworkCreate', { name: 'bench', subnet: '', vni: 0, internal: false });
  // One resident sandbox per host, so every host has the network set up and subscribed.
  for (const host of lab.hosts) await callAgent(host, 'SandboxCreate', { networks: ['bench'], name: `resident-${host.name}`, aliases: [], netns: '', command: [] });
  await new Promise((resolve) => setTimeout(resolve, 2_000));
  const byHost = new Map(lab.hosts.map((h) => [h.name, new Watcher(`${h.netns}-n${network.vni}`)]));
  watchers.push(...byHost.values());
  await new Promise((resolve) => setTimeout(resolve, 500));
  for (let trial = 0; trial < TRIALS; trial++) {
    const origin = lab.hosts[trial % HOSTS]!;
    const requestAt = epochMs();
    const sandbox = await callAgent<SandboxInfo>(origin, 'SandboxCreate', { networks: ['bench'], name: `t${trial}`, aliases: [], netns: '', command: [] });
    const endpoint = sandbox.endpoints[0]!;
    const others = lab.hosts.filter((h) => h !== origin).map((h) => byHost.get(h.name)!);
    const [fdb, neighbours] = await Promise.all([
      Promise.all(others.map((w) => w.wait(endpoint.mac, 10_000))),
      Promise.all(others.map((w) => w.wait(endpoint.ip, 10_000))),
    ]);
    const last = Math.max(...fdb, ...neighbours);
    const written = publishedAt(origin, endpoint.ip);
    // Not clamped: a negative figure would mean the clocks disagree, and is shown as such.
    fromWrite.push(last - written);
    fdbFromWrite.push(Math.max(...fdb) - written);
    fromRequest.push(last - requestAt);
    await callAgent(origin, 'SandboxDetach', { netns: sandbox.netns, network: '' });
  }
} finally {
  for (const w of watchers) w.stop();
  await labDown(prefix);
}

const row = (label: string, xs: number[]): string =>
  `${label.padEnd(44)} ${percentile(xs, 50).toFixed(1).padStart(7)} ${percentile(xs, 99).toFixed(1).padStart(7)} ${Math.max(...xs).toFixed(1).padStart(7)}`;
console.log(`lab convergence: ${HOSTS} hosts, ${TRIALS} trials (ms)`);
console.log(`${'measured from'.padEnd(44)} ${'p50'.padStart(7)} ${'p99'.padStart(7)} ${'max'.padStart(7)}`);
console.log(row('origin writes the endpoint → all hosts', fromWrite));
console.log(row('  of which FDB entries alone on all hosts', fdbFromWrite));
console.log(row('API request (incl. sandbox setup) → all hosts', fromRequest));
console.log(`load average at the end (1/5/15 min): ${loadavg().map((l) => l.toFixed(2)).join(' / ')} on a ${availableParallelism()}-CPU machine shared by the ${HOSTS} hosts`);
const result = {
  hosts: HOSTS,
  trials: TRIALS,
  fromWriteMs: { p50: percentile(fromWrite, 50), p99: percentile(fromWrite, 99), max: Math.max(...fromWrite) },
  fdbFromWriteMs: { p50: percentile(fdbFromWrite, 50), p99: percentile(fdbFromWrite, 99), max: Math.max(...fdbFromWrite) },
  loadAverage: loadavg(),
  fromRequestMs: { p50: percentile(fromRequest, 50), p99: percentile(fromRequest, 99), max: Math.max(...fromRequest) },
  goal: 'p50 <= 100 ms, p99 <= 300 ms',
  date: new Date().toISOString(),
};
mkdirSync('bench/results', { recursive: true });
writeFileSync(`bench/results/lab-convergence-${HOSTS}.json`, JSON.stringify(result, null, 2) + '\n');
