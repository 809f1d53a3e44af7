// What a lab costs: time for `lab up` (namespaces, agents, init, joins, full
// mesh) and the resident memory of each agent once idle. Prints a table and
// writes bench/results/lab-up-<hosts>.json. Usage: node bench/lab-up.ts [hosts] [runs]
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { labUp, labDown } from '../deploy/lab/lab.ts';
import { uniquePrefix } from '../test/helpers/weft-cli.ts';

const hosts = Number(process.argv[2] ?? 3);
const runs = Number(process.argv[3] ?? 3);
const IDLE_MS = 5_000;

function rssMb(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmRSS:'));
  return Number(line?.split(/\s+/)[1] ?? 0) / 1024;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

const upSeconds: number[] = [];
const rss: number[] = [];
for (let run = 0; run < runs; run++) {
  const prefix = uniquePrefix('b');
  try {
    const started = performance.now();
    const state = await labUp({ hosts, prefix });
    upSeconds.push((performance.now() - started) / 1000);
    await new Promise((resolve) => setTimeout(resolve, IDLE_MS));
    for (const host of state.hosts) rss.push(rssMb(host.pid));
  } finally {
    await labDown(prefix);
  }
}

const result = {
  hosts,
  runs,
  labUpSeconds: { median: median(upSeconds), min: Math.min(...upSeconds), max: Math.max(...upSeconds) },
  agentRssMb: { median: median(rss), max: Math.max(...rss) },
  node: process.version,
  date: new Date().toISOString(),
};
console.log(`lab up, ${hosts} hosts, ${runs} runs`);
console.log('figure                      median    min     max');
console.log(`lab up (s)                  ${result.labUpSeconds.median.toFixed(2).padEnd(9)} ${result.labUpSeconds.min.toFixed(2).padEnd(7)} ${result.labUpSeconds.max.toFixed(2)}`);
console.log(`agent RSS after ${IDLE_MS / 1000} s idle (MB) ${result.agentRssMb.median.toFixed(0).padEnd(9)} -       ${result.agentRssMb.max.toFixed(0)}`);
mkdirSync('bench/results', { recursive: true });
writeFileSync(`bench/results/lab-up-${hosts}.json`, JSON.stringify(result, null, 2) + '\n');
