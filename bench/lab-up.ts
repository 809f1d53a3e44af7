// What a lab costs: time for `lab up` (namespaces, agents, init, joins, full
// mesh), where that time goes (phases, from the lab's progress messages), how
// many "dead" verdicts the agents gave about their live peers while it came
// up (every member is alive the whole time, so each one is false), and the
// resident memory of each agent once idle. The load average is printed: the
// machine may be shared. Prints a table and writes
// bench/results/lab-up-<hosts>.json.
// Usage: node_modules/.bin/node bench/lab-up.ts [hosts (default 3)] [runs (default 3)] [joins at once (default: the lab's)]
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { DEFAULT_JOIN_CONCURRENCY, labUp, labDown, type LabState } from '../deploy/lab/lab.ts';
import { uniquePrefix } from '../test/helpers/weft-cli.ts';
import { memberStateChanges } from '../test/helpers/member-log.ts';

const hosts = Number(process.argv[2] ?? 3);
const runs = Number(process.argv[3] ?? 3);
const joinConcurrency = process.argv[4] === undefined ? DEFAULT_JOIN_CONCURRENCY : Number(process.argv[4]);
const IDLE_MS = 5_000;

// A phase ends where the first progress message matching the next phase's pattern arrives.
const PHASES: Array<{ name: string; endsAt: RegExp }> = [
  { name: 'namespaces + agent spawns', endsAt: /^waiting for every agent to answer/ },
  { name: 'agents answering', endsAt: /: weft init$/ },
  { name: 'init', endsAt: /: weft join |^waiting for every host/ },
  { name: 'joins', endsAt: /^waiting for every host/ },
  { name: 'full mesh', endsAt: /(?!)/ }, // never matches: ends where labUp returns
];

function rssMb(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmRSS:'));
  return Number(line?.split(/\s+/)[1] ?? 0) / 1024;
}

const loadAverage = (): string => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

/** Seconds per phase, from the timestamps of labUp's progress messages. */
function phaseSeconds(marks: Array<{ at: number; message: string }>, started: number, ended: number): number[] {
  let from = started;
  return PHASES.map((phase) => {
    const mark = marks.find((m) => m.at >= from && phase.endsAt.test(m.message));
    const to = mark?.at ?? ended;
    const seconds = (to - from) / 1000;
    from = to;
    return seconds;
  });
}

/** Member state changes to "dead" and "suspect", over every agent's log. */
function verdicts(state: LabState): { dead: number; suspect: number; agentsWithDead: number } {
  let dead = 0;
  let suspect = 0;
  let agentsWithDead = 0;
  for (const host of state.hosts) {
    const changes = memberStateChanges(host.logFile);
    const deadHere = changes.filter((c) => c.state === 'dead').length;
    suspect += changes.filter((c) => c.state === 'suspect').length;
    dead += deadHere;
    if (deadHere > 0) agentsWithDead++;
  }
  return { dead, suspect, agentsWithDead };
}

const upSeconds: number[] = [];
const phases: number[][] = [];
const rss: number[] = [];
const falseVerdicts: Array<ReturnType<typeof verdicts>> = [];
const progressPerRun: string[][] = [];
const loadAtStart = loadAverage();
for (let run = 0; run < runs; run++) {
  const prefix = uniquePrefix('b');
  try {
    const marks: Array<{ at: number; message: string }> = [];
    const started = performance.now();
    const state = await labUp({ hosts, prefix, joinConcurrency, progress: (message) => marks.push({ at: performance.now(), message }) });
    const ended = performance.now();
    upSeconds.push((ended - started) / 1000);
    phases.push(phaseSeconds(marks, started, ended));
    progressPerRun.push(marks.map((m) => `${((m.at - started) / 1000).toFixed(2)} s ${m.message}`));
    await new Promise((resolve) => setTimeout(resolve, IDLE_MS));
    for (const host of state.hosts) rss.push(rssMb(host.pid));
    falseVerdicts.push(verdicts(state));
  } finally {
    await labDown(prefix);
  }
}
const loadAtEnd = loadAverage();

const result = {
  hosts,
  runs,
  joinConcurrency,
  labUpSeconds: { median: median(upSeconds), min: Math.min(...upSeconds), max: Math.max(...upSeconds) },
  phaseSecondsMedian: Object.fromEntries(PHASES.map((p, i) => [p.name, median(phases.map((run) => run[i]!))])),
  falseVerdictsPerRun: falseVerdicts,
  progressPerRun,
  agentRssMb: { median: median(rss), max: Math.max(...rss) },
  loadAverage: { start: loadAtStart, end: loadAtEnd },
  node: process.version,
  date: new Date().toISOString(),
};
const row = (label: string, ...cells: string[]): string => `${label.padEnd(36)}${cells.map((c) => c.padEnd(9)).join('')}`;
console.log(`lab up, ${hosts} hosts, ${runs} runs, ${joinConcurrency} joins at once; load average ${loadAtStart} at the start, ${loadAtEnd} at the end`);
console.log(row('figure', 'median', 'min', 'max'));
console.log(row('lab up (s)', result.labUpSeconds.median.toFixed(2), result.labUpSeconds.min.toFixed(2), result.labUpSeconds.max.toFixed(2)));
for (const [i, phase] of PHASES.entries()) {
  const values = phases.map((run) => run[i]!);
  console.log(row(`  ${phase.name} (s)`, median(values).toFixed(2), Math.min(...values).toFixed(2), Math.max(...values).toFixed(2)));
}
const deads = falseVerdicts.map((v) => v.dead);
const suspects = falseVerdicts.map((v) => v.suspect);
console.log(row('"dead" verdicts about live members', String(median(deads)), String(Math.min(...deads)), String(Math.max(...deads))));
console.log(row('  agents that gave one', String(median(falseVerdicts.map((v) => v.agentsWithDead))), '', ''));
console.log(row('suspicions of live members', String(median(suspects)), String(Math.min(...suspects)), String(Math.max(...suspects))));
console.log(row(`agent RSS after ${IDLE_MS / 1000} s idle (MB)`, result.agentRssMb.median.toFixed(0), '-', result.agentRssMb.max.toFixed(0)));
mkdirSync('bench/results', { recursive: true });
writeFileSync(`bench/results/lab-up-${hosts}.json`, JSON.stringify(result, null, 2) + '\n');
