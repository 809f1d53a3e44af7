// Fuzzes every parser that takes bytes from outside (test/helpers/fuzz/:
// wire codecs, admission, certificates, tokens, the DNS server, the agent
// API's validation, config files), one million inputs in total by default,
// and prints per target: inputs run, accepted, cleanly refused, crashes,
// hangs (an input over 1 s, or a thread that stops making progress), the
// slowest input, the JS heap after a full GC at the start, each quarter and
// the end of the target's run (flat = bounded), and the process's max RSS.
// Targets run in a worker thread capped at 2 GB of heap, watched by the main
// thread (supervisor.ts); the DNS server's real sockets get a slice at the end.
// Writes bench/results/fuzz.json; exits 1 on any crash or hang.
// Usage: node bench/fuzz.ts [inputs=1000000] [seed=1] [target-name-prefix]
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { allTargets } from '../test/helpers/fuzz/targets.ts';
import { supervise } from '../test/helpers/fuzz/supervisor.ts';
import { fuzzDnsSockets } from '../test/helpers/fuzz/dns-socket.ts';
import type { TargetStats } from '../test/helpers/fuzz/run.ts';

const total = Number(process.argv[2] ?? 1_000_000);
const seed = Number(process.argv[3] ?? 1);
const only = process.argv[4] ?? '';
if (!Number.isInteger(total) || total < 1 || !Number.isInteger(seed)) {
  console.error('usage: node bench/fuzz.ts [inputs] [seed] [target-name-prefix]');
  process.exit(2);
}

const targets = (await allTargets()).filter((t) => t.name.startsWith(only));
const withSockets = 'dns.sockets'.startsWith(only) || only === '';
const socketInputs = withSockets ? Math.max(1000, Math.floor(total * 0.02)) : 0;
const perTarget = Math.ceil((total - socketInputs) / Math.max(1, targets.length));
const began = performance.now();

const row = (s: TargetStats): string => {
  const heap = s.heapMb.length > 0 ? `${s.heapMb[0]} -> ${s.heapMb.at(-1)}` : '-';
  return [
    s.target.padEnd(22), String(s.inputs).padStart(8), String(s.accepted).padStart(8), String(s.rejected).padStart(8),
    String(s.crashes).padStart(7), String(s.hangs).padStart(5), s.slowestMs.toFixed(0).padStart(8), heap.padStart(14),
    String(s.maxRssMb).padStart(8), s.seconds.toFixed(1).padStart(7),
  ].join(' ');
};
console.log(`fuzzing ${targets.length} targets x ${perTarget} inputs${withSockets ? ` + ${socketInputs} on real DNS sockets` : ''}, seed ${seed}, ${cpus().length} CPUs`);
console.log(['target'.padEnd(22), 'inputs'.padStart(8), 'accepted'.padStart(8), 'refused'.padStart(8), 'crashes'.padStart(7), 'hangs'.padStart(5), 'slowest'.padStart(8), 'heap MB'.padStart(14), 'RSS MB'.padStart(8), 'seconds'.padStart(7)].join(' '));

const results = await supervise({
  jobs: targets.map((t) => ({ target: t.name, inputs: perTarget, start: 0 })),
  seed,
  targets: new Map(targets.map((t) => [t.name, t])),
  onResult: (s) => console.log(row(s)),
});
if (withSockets) {
  const udp = (await allTargets()).find((t) => t.name === 'dns.query')!;
  const tcp = (await allTargets()).find((t) => t.name === 'dns.tcp-stream')!;
  const sockets = await fuzzDnsSockets(udp, tcp, socketInputs, seed);
  console.log(row(sockets));
  results.push(sockets);
}

const sum = (key: 'inputs' | 'accepted' | 'rejected' | 'crashes' | 'hangs'): number => results.reduce((n, s) => n + s[key], 0);
const totals = {
  inputs: sum('inputs'), accepted: sum('accepted'), rejected: sum('rejected'), crashes: sum('crashes'), hangs: sum('hangs'),
  slowestMs: Math.round(Math.max(...results.map((s) => s.slowestMs))),
  maxRssMb: Math.max(...results.map((s) => s.maxRssMb)),
  /** Largest rise of a target's post-GC heap from its first sample to its last. */
  maxHeapGrowthMb: Math.round(Math.max(...results.filter((s) => s.heapMb.length > 1).map((s) => s.heapMb.at(-1)! - s.heapMb[0]!)) * 10) / 10,
  seconds: Math.round((performance.now() - began) / 100) / 10,
};
console.log(row({ target: 'TOTAL', group: '', rejects: '', ...totals, heapMb: [], findings: [] } as TargetStats));
console.log(`max heap growth of any target (post-GC, first -> last sample): ${totals.maxHeapGrowthMb} MB`);
for (const s of results) for (const f of s.findings) console.log(`  ${s.target} #${f.index} ${f.kind}: ${f.message} (${f.bytes} bytes: ${f.input.slice(0, 96)})`);

mkdirSync('bench/results', { recursive: true });
writeFileSync('bench/results/fuzz.json', JSON.stringify({ seed, requested: total, totals, targets: results, node: process.version, cpus: cpus().length, date: new Date().toISOString() }, null, 2) + '\n');
if (totals.crashes > 0 || totals.hangs > 0) process.exitCode = 1;
