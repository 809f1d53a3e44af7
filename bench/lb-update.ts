// How fast a backend change reaches every sandbox's VIP table on one host.
// For N sandbox namespaces (1, 100, 1000), each load-balancing 10 services
// with 3 backends: one backend of one service changes, and the clock runs
// from handing the full desired state of all N sandboxes to the load balancer
// (what the agent does on every table change) until every namespace holds the
// new set (verified by reading two of them back). Also: programming 1000
// services x 10 backends into one sandbox from nothing, and the same backend
// change on UDP services with the removed backend's conntrack entries deleted
// in every sandbox (the namespaces track no flow: the cost of the messages).
// Prints a table and writes bench/results/lb-update.json.
// Usage: node_modules/.bin/node bench/lb-update.ts [changes per size] [sizes, default 1,100,1000]
import { execa } from 'execa';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { LoadBalancer, LB_TABLE, type LbService, type SandboxLb } from '../dataplane/lb/index.ts';
import { netnsByName } from '../dataplane/netns.ts';

const CHANGES = Number(process.argv[2] ?? 20);
const SIZES = (process.argv[3] ?? '1,100,1000').split(',').map(Number);
const prefix = `wlb${randomBytes(3).toString('hex')}`;
const names: string[] = [];

const percentile = (xs: number[], p: number): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))] ?? NaN;

function services(count: number, backends: number, generation = 0, protocol: 'tcp' | 'udp' = 'tcp'): LbService[] {
  return Array.from({ length: count }, (_, s) => ({
    name: `svc${s}`,
    vip: `100.64.${Math.floor(s / 250)}.${(s % 250) + 2}`,
    ports: [{ port: 80, protocol }],
    backends: Array.from({ length: backends }, (_, b) => `100.65.${s % 250}.${((b + (s === 0 ? generation : 0)) % 250) + 2}`),
  }));
}

async function batch(lines: string[]): Promise<void> {
  const r = await execa('ip', ['-batch', '-'], { input: lines.join('\n') + '\n', reject: false });
  if (r.exitCode !== 0) throw new Error(`ip -batch failed: ${r.stderr.slice(0, 300)}`);
}

async function ensureNamespaces(count: number): Promise<void> {
  const missing = Array.from({ length: count }, (_, i) => `${prefix}-${i}`).slice(names.length);
  await batch(missing.map((n) => `netns add ${n}`));
  names.push(...missing);
}

async function backendsIn(name: string, service: string): Promise<string> {
  const r = await execa('nsenter', [`--net=/run/netns/${name}`, '/usr/sbin/nft', 'list', 'chain', 'ip', LB_TABLE, `svc_${service}`]);
  return String(r.stdout);
}

const rows: { sandboxes: number; p50ms: number; p99ms: number; maxms: number; initialMs: number; udpDropP50ms: number; udpDropP99ms: number }[] = [];
let fullMs = NaN;
const lb = new LoadBalancer();
try {
  // Full programming: 1000 services x 10 backends into one fresh sandbox.
  await ensureNamespaces(1);
  const big = services(1000, 10);
  const fullStart = performance.now();
  const full = await lb.apply([{ sandbox: netnsByName(names[0]!), services: big }]);
  fullMs = performance.now() - fullStart;
  if (full.errors.length > 0) throw new Error(full.errors[0]!.error);
  lb.forget(netnsByName(names[0]!));

  for (const size of SIZES) {
    await ensureNamespaces(size);
    // Sandboxes on the same network get the same services array, as from the agent.
    const desired = (generation: number): SandboxLb[] => {
      const shared = services(10, 3, generation);
      return names.slice(0, size).map((n) => ({ sandbox: netnsByName(n), services: shared }));
    };
    const initialStart = performance.now();
    const first = await lb.apply(desired(0));
    const initialMs = performance.now() - initialStart;
    if (first.errors.length > 0) throw new Error(first.errors[0]!.error);
    const samples: number[] = [];
    for (let change = 1; change <= CHANGES; change++) {
      const start = performance.now();
      const result = await lb.apply(desired(change));
      samples.push(performance.now() - start);
      if (result.errors.length > 0 || result.applied !== size) throw new Error(`change ${change}: applied ${result.applied} of ${size}: ${result.errors[0]?.error}`);
      const expected = `100.65.0.${((change + 2) % 250) + 2}`;
      for (const n of [names[0]!, names[size - 1]!]) {
        if (!(await backendsIn(n, 'svc0')).includes(expected)) throw new Error(`${n} does not hold ${expected} after change ${change}`);
      }
    }
    // The same change on UDP services, with the removed backend's conntrack entries deleted in
    // every sandbox (what the service plane asks when a UDP backend leaves).
    const udp = (generation: number): SandboxLb[] => {
      const shared = services(10, 3, generation, 'udp');
      const removed = `100.65.0.${(generation % 250) + 1}`;
      return names.slice(0, size).map((n) => ({ sandbox: netnsByName(n), services: shared, dropFlows: [[shared[0]!.vip, 'udp', removed] as const] }));
    };
    const udpFirst = await lb.apply(udp(0));
    if (udpFirst.errors.length > 0) throw new Error(udpFirst.errors[0]!.error);
    const udpSamples: number[] = [];
    for (let change = 1; change <= CHANGES; change++) {
      const start = performance.now();
      const result = await lb.apply(udp(change));
      udpSamples.push(performance.now() - start);
      if (result.errors.length > 0 || result.applied !== size) throw new Error(`UDP change ${change}: applied ${result.applied} of ${size}: ${result.errors[0]?.error}`);
    }
    await lb.apply(desired(0));
    rows.push({
      sandboxes: size, p50ms: percentile(samples, 50), p99ms: percentile(samples, 99), maxms: Math.max(...samples), initialMs,
      udpDropP50ms: percentile(udpSamples, 50), udpDropP99ms: percentile(udpSamples, 99),
    });
    console.error(`${size} sandboxes: p50 ${percentile(samples, 50).toFixed(1)} ms`);
  }
  console.log(`\nLB update: one backend change -> every sandbox's table (10 services x 3 backends each); ${CHANGES} changes per size`);
  console.log('sandboxes   p50 ms   p99 ms   max ms   first full programming ms   UDP + flow deletion p50 / p99 ms');
  for (const r of rows) console.log(`${String(r.sandboxes).padStart(9)} ${r.p50ms.toFixed(1).padStart(8)} ${r.p99ms.toFixed(1).padStart(8)} ${r.maxms.toFixed(1).padStart(8)} ${r.initialMs.toFixed(0).padStart(12)} ${r.udpDropP50ms.toFixed(1).padStart(25)} / ${r.udpDropP99ms.toFixed(1)}`);
  console.log(`full programming of 1000 services x 10 backends into one sandbox: ${fullMs.toFixed(0)} ms (goal <= 1000 ms)`);
  mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
  writeFileSync(new URL('./results/lb-update.json', import.meta.url), JSON.stringify({ changes: CHANGES, rows, fullProgramming1000x10Ms: fullMs }, null, 2) + '\n');
} finally {
  await lb.close();
  for (let i = 0; i < names.length; i += 500) await batch(names.slice(i, i + 500).map((n) => `netns del ${n}`)).catch(() => undefined);
}
