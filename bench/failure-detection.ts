// Failure-detection benchmark of the membership protocol, on the
// deterministic simulator (the production state machine, virtual time).
//
//   node bench/failure-detection.ts        (node = node_modules/.bin/node, v24)
//
// Prints a table and writes bench/results/failure-detection.json. Figures
// are in simulated time, so they do not depend on the machine's load; only
// the "sim scale" section reports real CPU time.

import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_MEMBERSHIP_CONFIG } from '../controlplane/membership/config.ts';
import { runCrash, runQuiet } from '../controlplane/sim/failure-detection.ts';
import { MembershipCluster } from '../controlplane/sim/membership-cluster.ts';
import { DEFAULT_NETWORK } from '../controlplane/sim/network.ts';

const SEEDS = 30;

function percentile(values: readonly number[], p: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)] ?? null;
}

function summary(values: readonly number[]) {
  const r = (x: number | null) => (x === null ? null : Math.round(x));
  return { p50: r(percentile(values, 0.5)), p90: r(percentile(values, 0.9)), max: r(percentile(values, 1)) };
}

const seeds = (count: number) => Array.from({ length: count }, (_, i) => i + 1);

function crashDetection(n: number) {
  const runs = seeds(SEEDS).map((seed) => runCrash({ n, seed, limitMs: 120_000 }));
  const detected = runs.filter((r) => r.allDeadMs !== null);
  return {
    n,
    seeds: runs.length,
    undetected: runs.length - detected.length,
    falseDead: runs.reduce((sum, r) => sum + r.falseDead, 0),
    allDeadMs: summary(detected.map((r) => r.allDeadMs as number)),
    firstDeadMs: summary(detected.map((r) => r.firstDeadMs as number)),
  };
}

function falsePositives(n: number, loss: number, count: number) {
  const runs = seeds(count).map((seed) => runQuiet({ n, seed, loss, durationMs: 600_000 }));
  return {
    n,
    loss,
    seeds: runs.length,
    simulatedMinutes: 10,
    falseDead: runs.reduce((sum, r) => sum + r.falseDead, 0),
    suspicions: runs.reduce((sum, r) => sum + r.suspicions, 0),
    suspectVerdicts: runs.reduce((sum, r) => sum + r.suspectVerdicts, 0),
    messagesPerNodePerSecond: Number((runs.reduce((s, r) => s + r.messagesPerNodePerSecond, 0) / runs.length).toFixed(1)),
  };
}

/** 30% of N=100 cut off; time until both sides see the other dead, then heal + one push-pull. */
function partitionHeal(seed: number) {
  const cluster = new MembershipCluster({ n: 100, seed });
  const sim = cluster.sim;
  sim.runUntil(5_000);
  const minority = cluster.ids.slice(0, 30);
  const majority = cluster.ids.slice(30);
  sim.network.partition([minority, majority]);
  const sees = (a: readonly string[], b: readonly string[]) => () => a.every((x) => b.every((y) => cluster.stateOf(x, y) === 'dead'));
  sim.runUntilTrue(125_000, sees(majority, minority));
  const majoritySplitMs = sim.now - 5_000;
  sim.runUntilTrue(125_000, sees(minority, majority));
  const minoritySplitMs = sim.now - 5_000;
  sim.network.heal();
  cluster.pushPull(minority[0] as string, majority[0] as string);
  const healedAt = sim.now;
  const converged = sim.runUntilTrue(healedAt + 120_000, () => cluster.converged());
  return { seed, majoritySplitMs, minoritySplitMs, healMs: converged ? sim.now - healedAt : null };
}

function simScale() {
  const n = 1000;
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  const cluster = new MembershipCluster({ n, seed: 1 });
  const sim = cluster.sim;
  sim.runUntil(20_000);
  cluster.crash('n500');
  sim.runUntil(60_000);
  const cpu = process.cpuUsage(cpuBefore);
  const deadEverywhere = cluster.upIds().every((id) => cluster.stateOf(id, 'n500') === 'dead');
  return {
    n,
    simulatedSeconds: 60,
    wallMs: Math.round(performance.now() - started),
    cpuMs: Math.round((cpu.user + cpu.system) / 1000),
    messages: sim.stats.sent,
    ticks: sim.stats.ticks,
    rssMB: Math.round(process.memoryUsage().rss / 1e6),
    crashDetectedEverywhere: deadEverywhere,
    converged: cluster.converged(),
  };
}

const fmt = (x: number | null) => (x === null ? '-' : (x / 1000).toFixed(2));

const started = performance.now();
const crash = [crashDetection(10), crashDetection(100)];
console.log(`crash -> dead on every other node (simulated seconds, ${SEEDS} seeds, latency ${DEFAULT_NETWORK.latencyMs}±${DEFAULT_NETWORK.jitterMs} ms, no loss)`);
console.log('   N   p50    p90    max    first-p50  undetected  false-dead');
for (const c of crash) {
  console.log(
    `${String(c.n).padStart(4)}  ${fmt(c.allDeadMs.p50).padStart(5)}  ${fmt(c.allDeadMs.p90).padStart(5)}  ${fmt(c.allDeadMs.max).padStart(5)}  ${fmt(c.firstDeadMs.p50).padStart(9)}  ${String(c.undetected).padStart(10)}  ${String(c.falseDead).padStart(10)}`,
  );
}

const quiet = [falsePositives(10, 0.1, 5), falsePositives(100, 0.1, 2), falsePositives(10, 0.2, 5)];
console.log('\nfalse positives: quiet cluster, 10 simulated minutes per seed (suspicions: distinct, all refuted unless false-dead > 0)');
console.log('   N  loss  seeds  false-dead  suspicions  msgs/node/s');
for (const q of quiet) {
  console.log(
    `${String(q.n).padStart(4)}  ${(q.loss * 100).toFixed(0).padStart(3)}%  ${String(q.seeds).padStart(5)}  ${String(q.falseDead).padStart(10)}  ${String(q.suspicions).padStart(10)}  ${q.messagesPerNodePerSecond.toFixed(1).padStart(11)}`,
  );
}

const partitions = seeds(5).map(partitionHeal);
console.log('\n30% partition of N = 100 (simulated seconds): split detected, then heal + one push-pull');
console.log('seed  majority-sees-split  minority-sees-split  heal->all-alive');
for (const p of partitions) {
  console.log(`${String(p.seed).padStart(4)}  ${fmt(p.majoritySplitMs).padStart(19)}  ${fmt(p.minoritySplitMs).padStart(19)}  ${fmt(p.healMs).padStart(15)}`);
}

const scale = simScale();
console.log(
  `\nsim scale: N = ${scale.n}, ${scale.simulatedSeconds} simulated s: ${(scale.cpuMs / 1000).toFixed(1)} s CPU, ${scale.messages} messages, RSS ${scale.rssMB} MB, crash detected everywhere: ${scale.crashDetectedEverywhere}`,
);

const results = {
  benchmark: 'failure-detection',
  generatedAt: new Date().toISOString(),
  node: process.version,
  config: DEFAULT_MEMBERSHIP_CONFIG,
  network: DEFAULT_NETWORK,
  crashDetection: crash,
  falsePositives: quiet,
  partitionHeal: partitions,
  simScale: scale,
  runtimeMs: Math.round(performance.now() - started),
};
const out = join(dirname(fileURLToPath(import.meta.url)), 'results', 'failure-detection.json');
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, `${JSON.stringify(results, null, 2)}\n`);
console.log(`\nwrote ${out} (${(results.runtimeMs / 1000).toFixed(1)} s)`);
