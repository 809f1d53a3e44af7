// Partition healing on a real 5-host lab: one host's underlay link is cut
// (its veth on the lab switch set down) for 5, 20 and 60 s, then restored;
// measured from the moment the link is back until every host shows exactly
// the healthy cluster's DNS answers (tasks.web), FDB and neighbour entries
// and load-balancing table again (polled every 100 ms). Also from the agents'
// logs: when the victim is alive again on every other host, and when it sees
// them all alive. Prints a table, writes bench/results/partition-heal.json.
// Usage: node bench/partition-heal.ts [trials per length] [lengths in s, comma-separated]
import { writeFileSync, mkdirSync } from 'node:fs';
import { labUp, labDown, type LabState } from '../deploy/lab/lab.ts';
import { uniquePrefix } from '../test/helpers/weft-cli.ts';
import { partitionAndHeal, setUpHealScenario, type HealTrial } from '../test/helpers/heal-scenario.ts';

const TRIALS = Number(process.argv[2] ?? 3);
const LENGTHS_S = (process.argv[3] ?? '5,20,60').split(',').map(Number);
if (!Number.isInteger(TRIALS) || TRIALS < 1 || LENGTHS_S.some((s) => !(s > 0))) {
  console.error('usage: node bench/partition-heal.ts [trials >= 1] [lengths in s, e.g. 5,20,60]');
  process.exit(2);
}
const HOSTS = 5;
const HEAL_TIMEOUT_MS = 90_000;
const SETTLE_MS = 3_000;
const prefix = uniquePrefix('p');

const percentile = (xs: number[], p: number): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.ceil((p / 100) * xs.length) - 1)] ?? NaN;
const fmt = (ms: number | undefined): string => (ms === undefined || Number.isNaN(ms) ? '-' : (ms / 1000).toFixed(2));

const trials: HealTrial[] = [];
let lab: LabState | undefined;
try {
  lab = await labUp({ hosts: HOSTS, prefix });
  const setup = await setUpHealScenario(lab);
  let round = 0;
  for (const seconds of LENGTHS_S) {
    for (let i = 0; i < TRIALS; i++) {
      const victim = lab.hosts[1 + (round++ % (HOSTS - 1))]!;
      const trial = await partitionAndHeal(lab, setup, victim, seconds * 1000, HEAL_TIMEOUT_MS);
      trials.push(trial);
      console.error(`${seconds} s cut of ${trial.victim}: healed in ${fmt(trial.healMs)} s (diverged: ${trial.diverged}; alive everywhere ${fmt(trial.aliveEverywhereMs)} s, victim sees all ${fmt(trial.victimSeesAllMs)} s)${trial.stillDifferent.length ? ` still different: ${trial.stillDifferent.join('; ')}` : ''}`);
      await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
    }
  }
} finally {
  await labDown(prefix);
}

interface Row { partitionS: number; trials: number; diverged: number; unhealed: number; healP50Ms: number; healMaxMs: number; aliveP50Ms: number; aliveMaxMs: number; victimSeesAllMaxMs: number }
const rows: Row[] = LENGTHS_S.map((seconds) => {
  const of = trials.filter((t) => t.partitionMs === seconds * 1000);
  const healed = of.flatMap((t) => (t.healMs === undefined ? [] : [t.healMs]));
  const alive = of.flatMap((t) => (t.aliveEverywhereMs === undefined ? [] : [t.aliveEverywhereMs]));
  const sees = of.flatMap((t) => (t.victimSeesAllMs === undefined ? [] : [t.victimSeesAllMs]));
  return {
    partitionS: seconds, trials: of.length, diverged: of.filter((t) => t.diverged).length, unhealed: of.length - healed.length,
    healP50Ms: percentile(healed, 50), healMaxMs: healed.length ? Math.max(...healed) : NaN,
    aliveP50Ms: percentile(alive, 50), aliveMaxMs: alive.length ? Math.max(...alive) : NaN,
    victimSeesAllMaxMs: sees.length ? Math.max(...sees) : NaN,
  };
});

console.log(`partition healing on a ${HOSTS}-host lab: link back → exact DNS + FDB + neighbour + LB on every host (s)`);
console.log(`${'cut'.padStart(5)} ${'trials'.padStart(6)} ${'diverged'.padStart(8)} ${'unhealed'.padStart(8)} ${'heal p50'.padStart(9)} ${'heal max'.padStart(9)} ${'alive p50'.padStart(9)} ${'alive max'.padStart(9)} ${'victim max'.padStart(10)}`);
for (const r of rows) {
  console.log(`${`${r.partitionS} s`.padStart(5)} ${String(r.trials).padStart(6)} ${String(r.diverged).padStart(8)} ${String(r.unhealed).padStart(8)} ${fmt(r.healP50Ms).padStart(9)} ${fmt(r.healMaxMs).padStart(9)} ${fmt(r.aliveP50Ms).padStart(9)} ${fmt(r.aliveMaxMs).padStart(9)} ${fmt(r.victimSeesAllMaxMs).padStart(10)}`);
}
mkdirSync('bench/results', { recursive: true });
writeFileSync('bench/results/partition-heal.json', JSON.stringify({
  hosts: HOSTS, trialsPerLength: TRIALS, lengthsS: LENGTHS_S, healTimeoutMs: HEAL_TIMEOUT_MS, rows, trials,
  goal: 'link back → exact state on every host within 3 s',
  date: new Date().toISOString(),
}, null, 2) + '\n');
