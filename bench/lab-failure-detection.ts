// Failure detection on a real 5-host lab with the real transport: kill -9 of
// one agent → every survivor reports it dead (polled over the agent API every
// 50 ms), then the agent restarts and must be alive everywhere again before
// the next trial. Prints a table, writes bench/results/lab-failure-detection.json.
// Usage: node bench/lab-failure-detection.ts [trials]
import { writeFileSync, mkdirSync } from 'node:fs';
import { labUp, labDown, restartAgent, waitForAgent, callAgent, type LabHost, type LabState } from '../deploy/lab/lab.ts';
import { uniquePrefix } from '../test/helpers/weft-cli.ts';

const TRIALS = Number(process.argv[2] ?? 10);
const HOSTS = 5;
const POLL_MS = 50;
const prefix = uniquePrefix('f');

async function stateOf(observer: LabHost, name: string): Promise<string | undefined> {
  const reply = await callAgent<{ members: Array<{ name: string; state: string }> }>(observer, 'Members');
  return reply.members.find((m) => m.name === name)?.state;
}

async function until(check: () => Promise<boolean>, timeoutMs: number): Promise<number> {
  const start = performance.now();
  while (performance.now() - start < timeoutMs) {
    if (await check().catch(() => false)) return performance.now() - start;
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
  throw new Error(`not reached within ${timeoutMs} ms`);
}

const percentile = (xs: number[], p: number): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.ceil((p / 100) * xs.length) - 1)] ?? NaN;

const detect: number[] = [];
const rejoin: number[] = [];
let lab: LabState | undefined;
try {
  lab = await labUp({ hosts: HOSTS, prefix });
  for (let trial = 0; trial < TRIALS; trial++) {
    const victim = lab.hosts[1 + (trial % (HOSTS - 1))]!;
    const survivors = lab.hosts.filter((h) => h !== victim);
    process.kill(victim.pid, 'SIGKILL');
    detect.push(await until(async () => (await Promise.all(survivors.map((s) => stateOf(s, victim.name)))).every((s) => s === 'dead'), 30_000));
    const restarted = restartAgent(prefix, victim.name);
    lab.hosts = lab.hosts.map((h) => (h.name === victim.name ? restarted : h));
    await waitForAgent(restarted);
    rejoin.push(await until(async () => (await Promise.all(survivors.map((s) => stateOf(s, victim.name)))).every((s) => s === 'alive'), 30_000));
  }
} finally {
  await labDown(prefix);
}

console.log(`failure detection on a ${HOSTS}-host lab, ${TRIALS} trials (ms)`);
console.log(`${'event'.padEnd(46)} ${'p50'.padStart(7)} ${'p90'.padStart(7)} ${'max'.padStart(7)}`);
for (const [label, xs] of [['kill -9 → dead on every survivor', detect], ['agent answering again → alive on every survivor', rejoin]] as const) {
  console.log(`${label.padEnd(46)} ${percentile(xs, 50).toFixed(0).padStart(7)} ${percentile(xs, 90).toFixed(0).padStart(7)} ${Math.max(...xs).toFixed(0).padStart(7)}`);
}
mkdirSync('bench/results', { recursive: true });
writeFileSync('bench/results/lab-failure-detection.json', JSON.stringify({
  hosts: HOSTS, trials: TRIALS, pollMs: POLL_MS,
  crashToDeadMs: { p50: percentile(detect, 50), p90: percentile(detect, 90), max: Math.max(...detect), samples: detect },
  restartToAliveMs: { p50: percentile(rejoin, 50), p90: percentile(rejoin, 90), max: Math.max(...rejoin), samples: rejoin },
  goal: 'crash → dead everywhere p50 <= 3 s, max <= 6 s (N = 10, simulated); measured here at N = 5 on the real transport',
  date: new Date().toISOString(),
}, null, 2) + '\n');
