// How fast remote endpoints reach the kernel: N endpoints (default 10,000) of
// one network, each one FDB + one neighbour entry, programmed end to end
// through the reconciler (desired state -> read JSON -> diff -> batches) versus
// raw `bridge -batch` / `ip -batch` of the same lines, alternating in one run.
// Also: a no-op reconcile of the full state (what start-up and the periodic
// repair cost), a 10% churn, and one `ip` process per entry for scale.
// Prints a table and writes bench/results/dataplane-programming.json.
// Usage: node_modules/.bin/node bench/dataplane-programming.ts [endpoints] [rounds]
import { execa } from 'execa';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createEmulatedHosts, randomPrefix } from '../dataplane/testing/emulated-hosts.ts';
import { dataplaneContext, ensureNetwork, macFromIp, reconcile, removeNetwork } from '../dataplane/index.ts';
import type { NetworkSpec, RemoteEndpoint } from '../dataplane/index.ts';
import { formatIPv4, parseIPv4 } from '../lib/ipv4.ts';

const N = Number(process.argv[2] ?? 10_000);
const ROUNDS = Number(process.argv[3] ?? 3);
const PER_PROCESS_SAMPLE = 200;

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
const base = parseIPv4('100.64.0.0');
const endpoints = (count: number, offset = 0, vtepOf = (i: number) => `198.18.1.${(i % 200) + 1}`): RemoteEndpoint[] =>
  Array.from({ length: count }, (_, i) => {
    const ip = formatIPv4(base + 2 + offset + i);
    return { ip, mac: macFromIp(ip), vtep: vtepOf(offset + i) };
  });

async function timed<T>(fn: () => Promise<T>): Promise<[number, T]> {
  const start = performance.now();
  const value = await fn();
  return [(performance.now() - start) / 1000, value];
}

async function batch(file: string, args: string[], lines: string[]): Promise<void> {
  const r = await execa(file, [...args, '-batch', '-'], { input: lines.join('\n') + '\n', reject: false });
  if (r.exitCode !== 0) throw new Error(`${file} batch failed: ${r.stderr.slice(0, 300)}`);
}

const lab = await createEmulatedHosts({ prefix: randomPrefix('bdp'), hosts: 1 });
const host = lab.hosts[0]!;
// Only creating the VXLAN device needs the host namespace; entries are
// programmed with `-n NETNS`, exactly as the agent does from the host.
const direct = dataplaneContext({ nsPrefix: host.netns });
const spec = (vni: number): NetworkSpec => ({ name: `bench${vni}`, vni, subnet: '100.64.0.0/10', gateway: '100.64.0.1', vtep: host.ip });
const rows = { raw: [] as number[], reconciler: [] as number[], noop: [] as number[], churn: [] as number[], perProcess: [] as number[] };
const churnCounts: Array<{ added: number; removed: number; replaced: number }> = [];
try {
  const desired = endpoints(N);
  for (let round = 0; round < ROUNDS; round++) {
    // Raw: the same lines a hand-written script would feed, into a fresh network.
    const rawNet = (await ensureNetwork(host.ctx, spec(100 + round))).network;
    const [rawSeconds] = await timed(async () => {
      await batch('bridge', ['-n', rawNet.netns], desired.map((e) => `fdb add ${e.mac} dev vxlan0 dst ${e.vtep} self permanent`));
      await batch('ip', ['-n', rawNet.netns], desired.map((e) => `neigh add ${e.ip} lladdr ${e.mac} dev vxlan0 nud permanent`));
    });
    rows.raw.push(rawSeconds);
    await removeNetwork(host.ctx, 100 + round);

    // Reconciler, from desired state to kernel, into a fresh network.
    await ensureNetwork(host.ctx, spec(200 + round));
    const [recSeconds, result] = await timed(() => reconcile(direct, [{ vni: 200 + round, endpoints: desired }]));
    if (result.added !== 2 * N || result.errors.length > 0) throw new Error(`reconcile added ${result.added}, errors ${result.errors.join('; ')}`);
    rows.reconciler.push(recSeconds);

    const [noopSeconds, noop] = await timed(() => reconcile(direct, [{ vni: 200 + round, endpoints: desired }]));
    if (noop.added + noop.removed + noop.replaced !== 0) throw new Error('no-op reconcile changed entries');
    rows.noop.push(noopSeconds);

    // 10% churn: a tenth removed, a tenth moved to another VTEP, a tenth new.
    const tenth = Math.floor(N / 10);
    const churned = [
      ...desired.slice(tenth, 2 * tenth).map((e) => ({ ...e, vtep: '198.18.2.1' })),
      ...desired.slice(2 * tenth),
      ...endpoints(tenth, N),
    ];
    const [churnSeconds, churn] = await timed(() => reconcile(direct, [{ vni: 200 + round, endpoints: churned }]));
    rows.churn.push(churnSeconds);
    churnCounts.push({ added: churn.added, removed: churn.removed, replaced: churn.replaced });
    await removeNetwork(host.ctx, 200 + round);
  }

  // One process per entry, on a sample (it is too slow for all N).
  const sampleNet = (await ensureNetwork(host.ctx, spec(300))).network;
  const sample = endpoints(PER_PROCESS_SAMPLE);
  const [perProcessSeconds] = await timed(async () => {
    for (const e of sample) {
      await execa('bridge', ['-n', sampleNet.netns, 'fdb', 'add', e.mac, 'dev', 'vxlan0', 'dst', e.vtep, 'self', 'permanent']);
      await execa('ip', ['-n', sampleNet.netns, 'neigh', 'add', e.ip, 'lladdr', e.mac, 'dev', 'vxlan0', 'nud', 'permanent']);
    }
  });
  rows.perProcess.push(perProcessSeconds);
} finally {
  await lab.cleanup();
}

const entries = 2 * N;
const rate = (seconds: number, count = entries) => Math.round(count / seconds);
const churnEntries = churnCounts[0] ? churnCounts[0].added + churnCounts[0].removed + churnCounts[0].replaced : 0;
const result = {
  endpoints: N,
  kernelEntries: entries,
  rounds: ROUNDS,
  rawBatch: { seconds: median(rows.raw), entriesPerSecond: rate(median(rows.raw)), all: rows.raw },
  reconcilerFromEmpty: { seconds: median(rows.reconciler), entriesPerSecond: rate(median(rows.reconciler)), all: rows.reconciler },
  reconcilerNoop: { seconds: median(rows.noop), entriesCheckedPerSecond: rate(median(rows.noop)), all: rows.noop },
  reconcilerChurn10pct: { seconds: median(rows.churn), changes: churnCounts[0], entriesChangedPerSecond: rate(median(rows.churn), churnEntries), all: rows.churn },
  oneProcessPerEntry: { sampleEndpoints: PER_PROCESS_SAMPLE, seconds: rows.perProcess[0], entriesPerSecond: rate(rows.perProcess[0]!, 2 * PER_PROCESS_SAMPLE) },
  reconcilerVsRaw: Number((median(rows.raw) / median(rows.reconciler)).toFixed(3)),
  node: process.version,
  date: new Date().toISOString(),
};

console.log(`remote endpoint programming: ${N} endpoints = ${entries} kernel entries (FDB + neighbour), median of ${ROUNDS} rounds`);
console.log('path                                   seconds   entries/s');
const row = (name: string, seconds: number, perSecond: number) => console.log(`${name.padEnd(38)} ${seconds.toFixed(3).padStart(7)}   ${String(perSecond).padStart(9)}`);
row('raw bridge -batch + ip -batch', result.rawBatch.seconds, result.rawBatch.entriesPerSecond);
row('reconciler, empty -> desired', result.reconcilerFromEmpty.seconds, result.reconcilerFromEmpty.entriesPerSecond);
row('reconciler, no-op (read + diff)', result.reconcilerNoop.seconds, result.reconcilerNoop.entriesCheckedPerSecond);
row(`reconciler, 10% churn (${churnEntries} changes)`, result.reconcilerChurn10pct.seconds, result.reconcilerChurn10pct.entriesChangedPerSecond);
row(`one process per entry (${PER_PROCESS_SAMPLE} endpoints)`, result.oneProcessPerEntry.seconds!, result.oneProcessPerEntry.entriesPerSecond);
console.log(`reconciler / raw throughput: ${result.reconcilerVsRaw}`);
mkdirSync('bench/results', { recursive: true });
writeFileSync('bench/results/dataplane-programming.json', JSON.stringify(result, null, 2) + '\n');
