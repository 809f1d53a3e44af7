// Churn soak on a lab: random sandbox, service and backend changes, agent
// kills (kill -9 and clean) and restarts, underlay links cut and healed; after
// every few operations a quiet period in which every host must match the
// truth (endpoints, FDB, neighbours, DNS, load-balancing tables, no duplicate
// IP, doctor clean). Prints operations, quiet periods, violations and heal
// times; writes bench/results/soak.json.
// Usage: node bench/soak.ts [minutes=10] [hosts=5] [seed=random]
import { writeFileSync, mkdirSync } from 'node:fs';
import { runSoak } from '../test/helpers/soak.ts';
import { uniquePrefix } from '../test/helpers/weft-cli.ts';

const minutes = Number(process.argv[2] ?? 10);
const hosts = Number(process.argv[3] ?? 5);
const seed = Number(process.argv[4] ?? Math.floor(Math.random() * 2 ** 31));
if (!(minutes > 0) || !Number.isInteger(hosts) || hosts < 2 || !Number.isInteger(seed)) {
  console.error('usage: node bench/soak.ts [minutes>0] [hosts>=2] [seed]');
  process.exit(2);
}

const started = Date.now();
const report = await runSoak({
  prefix: uniquePrefix('k'), hosts, durationMs: minutes * 60_000, seed, operationsPerRound: 8, settleTimeoutMs: 60_000,
  // WEFT_SOAK_LOGS=DIR keeps every agent's log of a quiet period that failed or took over 10 s.
  ...(process.env['WEFT_SOAK_LOGS'] ? { logsDir: process.env['WEFT_SOAK_LOGS'], slowHealMs: 10_000 } : {}),
  log: (line) => console.error(`[${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s] ${line}`),
});

const heal = [...report.healTimesMs].sort((a, b) => a - b);
const at = (p: number) => heal[Math.min(heal.length - 1, Math.ceil(p * heal.length) - 1)] ?? NaN;
console.log(`soak: ${hosts} hosts, ${minutes} min, seed ${seed}`);
console.log(`${'operation'.padEnd(18)} ${'done'.padStart(6)} ${'refused'.padStart(8)}`);
for (const kind of [...new Set([...Object.keys(report.operations), ...Object.keys(report.refused)])].sort()) {
  console.log(`${kind.padEnd(18)} ${String(report.operations[kind] ?? 0).padStart(6)} ${String(report.refused[kind] ?? 0).padStart(8)}`);
}
console.log(`quiet periods checked: ${report.quietPeriods}`);
console.log(`violations: ${report.violations.length}`);
for (const v of report.violations.slice(0, 20)) console.log(`  ${v}`);
console.log(`heal time to the exact truth (ms): p50 ${at(0.5)}, p90 ${at(0.9)}, max ${heal.at(-1) ?? NaN}`);
mkdirSync('bench/results', { recursive: true });
writeFileSync('bench/results/soak.json', JSON.stringify({
  hosts, minutes, seed, ...report, healMs: { p50: at(0.5), p90: at(0.9), max: heal.at(-1) ?? null }, date: new Date().toISOString(),
}, null, 2) + '\n');
process.exit(report.violations.length === 0 ? 0 : 1);
