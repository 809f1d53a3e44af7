// CPU starvation on a quiet 5-host lab: one busy-loop process per core runs
// for N minutes while nothing else happens. Every false suspicion and false
// death is counted from the agents' logs ("member state changed" about a
// peer), and every host's kernel tables (remote FDB and neighbour entries on
// the network's VXLAN device, a sandbox's LB table) and DNS answers are
// compared with the healthy view about once a second. Goal: no deaths, and
// suspicions refuted without any entry leaving a kernel table.
// Usage: node bench/cpu-starvation.ts [minutes, default 5]
import { spawn, type ChildProcess } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { mkdirSync, writeFileSync } from 'node:fs';
import { labUp, labDown, callAgent, type LabState } from '../deploy/lab/lab.ts';
import { uniquePrefix } from '../test/helpers/weft-cli.ts';
import { setUpHealScenario, HEAL_SERVICE } from '../test/helpers/heal-scenario.ts';
import { readViews, viewDifferences } from '../test/helpers/lab-truth.ts';
import { memberStateChanges, type MemberStateChange } from '../test/helpers/member-log.ts';

const MINUTES = Number(process.argv[2] ?? 5);
if (!(MINUTES > 0)) {
  console.error('usage: node bench/cpu-starvation.ts [minutes > 0]');
  process.exit(2);
}
const HOSTS = 5;
const POLL_MS = 1_000;
const KERNEL_PARTS = ['fdb', 'neighbours', 'lb'] as const;
const prefix = uniquePrefix('cs');
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

interface Transition extends MemberStateChange { observer: string }

/** Changes of a peer's state logged by `observer` since `since` (its own incarnation bumps are left out). */
function transitions(logFile: string, observer: string, selfId: string, since: number): Transition[] {
  return memberStateChanges(logFile, since).filter((c) => c.node !== selfId).map((c) => ({ observer, ...c }));
}

/** Suspicions that ended in `alive` (refuted), per observer and node, in log order. */
function refutedCount(all: Transition[]): number {
  const open = new Set<string>();
  let refuted = 0;
  for (const t of all) {
    const key = `${t.observer}/${t.node}`;
    if (t.state === 'suspect') open.add(key);
    else if (open.delete(key) && t.state === 'alive') refuted++;
  }
  return refuted;
}

const burners: ChildProcess[] = [];
let lab: LabState | undefined;
let result: Record<string, unknown> | undefined;
try {
  lab = await labUp({ hosts: HOSTS, prefix });
  const setup = await setUpHealScenario(lab);
  const reply = await callAgent<{ members: Array<{ name: string; nodeId: string }> }>(lab.hosts[0]!, 'Members');
  const ids = new Map(reply.members.map((m) => [m.name, m.nodeId]));
  const cores = availableParallelism();
  for (let i = 0; i < cores; i++) burners.push(spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' }));
  const startedAt = Date.now();
  const endAt = startedAt + MINUTES * 60_000;
  let polls = 0;
  let kernelMismatches = 0;
  let dnsMismatches = 0;
  const kernelSamples: string[] = [];
  while (Date.now() < endAt) {
    const views = await readViews(setup.targets, HEAL_SERVICE);
    polls++;
    views.forEach((view, i) => {
      const differs = viewDifferences(setup.truth[i]!, view);
      const kernel = differs.filter((d) => (KERNEL_PARTS as readonly string[]).includes(d));
      if (kernel.length > 0) {
        kernelMismatches++;
        if (kernelSamples.length < 20) kernelSamples.push(`${new Date().toISOString()} ${lab!.hosts[i]!.name}: ${kernel.join(',')}`);
      }
      if (differs.includes('dns')) dnsMismatches++;
    });
    await sleep(POLL_MS);
  }
  for (const b of burners) b.kill('SIGKILL');
  const all = lab.hosts.flatMap((h) => transitions(h.logFile, h.name, ids.get(h.name)!, startedAt)).sort((a, b) => a.time - b.time);
  const suspicions = all.filter((t) => t.state === 'suspect').length;
  const deaths = all.filter((t) => t.state === 'dead').length;
  result = {
    hosts: HOSTS, minutes: MINUTES, burners: cores, polls,
    falseSuspicions: suspicions, refuted: refutedCount(all), falseDeaths: deaths,
    kernelTableMismatches: kernelMismatches, dnsMismatches, kernelSamples,
    transitions: all.map((t) => ({ ...t, at: new Date(t.time).toISOString() })),
    goal: '0 deaths; every suspicion refuted; no entry leaves a kernel table',
    date: new Date().toISOString(),
  };
} finally {
  for (const b of burners) b.kill('SIGKILL');
  await labDown(prefix);
}

const r = result!;
console.log(`CPU starvation: quiet ${HOSTS}-host lab, ${MINUTES} min, ${String(r['burners'])} busy-loop processes (one per core)`);
console.log(`${'suspicions'.padStart(10)} ${'refuted'.padStart(7)} ${'deaths'.padStart(6)} ${'kernel mismatches'.padStart(17)} ${'dns mismatches'.padStart(14)} ${'polls'.padStart(5)}`);
console.log(`${String(r['falseSuspicions']).padStart(10)} ${String(r['refuted']).padStart(7)} ${String(r['falseDeaths']).padStart(6)} ${String(r['kernelTableMismatches']).padStart(17)} ${String(r['dnsMismatches']).padStart(14)} ${String(r['polls']).padStart(5)}`);
mkdirSync('bench/results', { recursive: true });
writeFileSync('bench/results/cpu-starvation.json', JSON.stringify(r, null, 2) + '\n');
