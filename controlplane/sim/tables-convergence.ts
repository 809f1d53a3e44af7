// The replicated-table measurements, shared by test/sim/tables*.test.ts and
// bench/convergence.ts: how fast one endpoint entry reaches the cluster,
// what a quiet (or churning) cluster sends per node, and how a partition
// heals. All times are simulated milliseconds.

import { randomInt } from '../membership/rng.ts';
import type { Rng } from '../membership/rng.ts';
import type { GossipsubParams } from './dissemination-gossipsub.ts';
import type { NetworkConfig } from './network.ts';
import { TablesCluster } from './tables-cluster.ts';
import type { ConnectionParams } from './tables-connections.ts';
import type { Sizer, TrafficTotals } from './tables-messages.ts';
import type { HostTiming } from './tables-node.ts';
import { CLUSTER_TABLES, endpointsTable } from '../node/topics.ts';

export interface ConvergenceRunOptions {
  n: number;
  seed: number;
  network?: Partial<NetworkConfig>;
  gossipsub?: Partial<GossipsubParams>;
  connections?: Partial<ConnectionParams>;
  timing?: Partial<HostTiming>;
  naming?: 'short' | 'realistic';
  /** Lets meshes form (first heartbeats) before the write. */
  warmupMs?: number;
  limitMs?: number;
  /** The endpoint's value (default: 140 opaque bytes, about a weft.objects.Endpoint). */
  value?: Uint8Array;
}

export interface ConvergenceRunResult {
  n: number;
  seed: number;
  /** From tables.set on the writer until the entry is visible on ceil(p x N) nodes (writer included); null if not within limitMs. */
  p50Ms: number | null;
  p999Ms: number | null;
  p100Ms: number | null;
  reached: number;
  meanDegree: number;
  /** Copies of the message received per node (first copies plus duplicates, counted until 2 s after the 100% point). */
  copiesPerNode: number;
  /** Nodes whose first copy came through IHAVE/IWANT rather than eager push. */
  viaIwant: number;
}

export function runConvergence(options: ConvergenceRunOptions): ConvergenceRunResult {
  const { n, seed } = options;
  const cluster = new TablesCluster({
    n,
    seed,
    network: options.network ?? {},
    gossipsub: options.gossipsub ?? {},
    connections: options.connections ?? {},
    timing: options.timing ?? {},
    naming: options.naming ?? 'short',
  });
  const { sim } = cluster;
  sim.runUntil(options.warmupMs ?? 3_000);
  const table = endpointsTable('net1');
  const key = `ep-${seed}`;
  const writer = cluster.ids[randomInt(cluster.rng, n)] as string;
  const arrivals = new Map<string, number>();
  cluster.onTableChange(({ at, node, changes }) => {
    if (arrivals.has(node)) return;
    if (changes.some((c) => c.table === table && c.key === key && c.op !== 'remove')) arrivals.set(node, at);
  });
  const before = routerTotals(cluster);
  const start = sim.now;
  cluster.write(writer, table, key, options.value ?? new Uint8Array(140).fill(7));
  sim.runUntilTrue(start + (options.limitMs ?? 30_000), () => arrivals.size >= n);
  // Copies still in flight when the last node got its first one count too.
  sim.runFor(2_000);
  const after = routerTotals(cluster);
  const times = [...arrivals.values()].map((t) => t - start).sort((a, b) => a - b);
  const nth = (p: number) => {
    const k = Math.ceil(p * n);
    return k <= times.length ? (times[k - 1] as number) : null;
  };
  return {
    n,
    seed,
    p50Ms: nth(0.5),
    p999Ms: nth(0.999),
    p100Ms: nth(1),
    reached: times.length,
    meanDegree: cluster.graph.meanDegree(),
    copiesPerNode: (after.copies - before.copies) / n,
    viaIwant: after.viaIwant - before.viaIwant,
  };
}

function routerTotals(cluster: TablesCluster) {
  let copies = 0;
  let viaIwant = 0;
  for (const id of cluster.ids) {
    const c = cluster.node(id).router.counters;
    copies += c.firstCopies + c.duplicates;
    viaIwant += c.firstCopiesViaIwant;
  }
  return { copies, viaIwant };
}

// ---- traffic ----------------------------------------------------------------

export interface TrafficRunOptions {
  n: number;
  seed: number;
  sizer: Sizer;
  network?: Partial<NetworkConfig>;
  connections?: Partial<ConnectionParams>;
  /** The overlay network every node is on (a realistic ID gives realistic table and topic names). */
  networkId?: string;
  endpointsPerNode?: number;
  /** Values of endpoint entries and of the network's entry. */
  endpointValue?: (node: string, endpointId: string) => Uint8Array;
  networkValue?: Uint8Array;
  /** Until the start-up writes, their gossip and the first syncs are over. */
  settleMs?: number;
  /** Measurement window; a multiple of the 30 s sync period averages it out. */
  measureMs?: number;
  churn?: {
    /** Endpoint adds and removes per second, cluster-wide, on random nodes. */
    writesPerSecond: number;
    /** One node crashes 10 s into the window and restarts 30 s later. */
    crashRestart: boolean;
  };
}

export interface TrafficRunResult {
  n: number;
  seed: number;
  measureMs: number;
  meanDegree: number;
  entries: number;
  /** Per traffic class: sent per node per second. */
  perNodePerSecond: Record<string, TrafficTotals>;
  /** Full-round sync opens and answers sent per node per second (each would carry the agent's roster summary too). */
  syncSnapshotsPerNodePerSecond: number;
  /** Stored tables and membership agree everywhere 5 s after the window (writes drained). */
  convergedAtEnd: boolean;
}

export function runTraffic(options: TrafficRunOptions): TrafficRunResult {
  const { n, seed } = options;
  const network = options.networkId ?? 'net1';
  const table = endpointsTable(network);
  const perNode = options.endpointsPerNode ?? 5;
  const settleMs = options.settleMs ?? 40_000;
  const measureMs = options.measureMs ?? 120_000;
  const cluster = new TablesCluster({
    n,
    seed,
    sizer: options.sizer,
    naming: 'realistic',
    network: options.network ?? {},
    connections: options.connections ?? {},
    networksOf: () => [network],
  });
  const { sim } = cluster;
  const rng = cluster.rng;
  const value = (node: string, ep: string) => options.endpointValue?.(node, ep) ?? new Uint8Array(140).fill(7);
  const owned = new Map<string, string[]>(cluster.ids.map((id) => [id, []]));
  const addEndpoint = (node: string) => {
    const ep = hex12(rng);
    (owned.get(node) as string[]).push(ep);
    cluster.write(node, table, ep, value(node, ep));
  };
  sim.at(0, () => cluster.write(cluster.ids[0] as string, 'networks', network, options.networkValue ?? new Uint8Array(80).fill(3)));
  for (const id of cluster.ids) {
    for (let i = 0; i < perNode; i++) sim.at(randomInt(rng, 2_000), () => addEndpoint(id));
  }
  sim.runUntil(settleMs);
  const before = cluster.trafficTotals();
  const syncsBefore = syncSnapshots(cluster);
  const end = settleMs + measureMs;
  if (options.churn !== undefined) {
    const { writesPerSecond, crashRestart } = options.churn;
    const gap = 1000 / writesPerSecond;
    for (let at = settleMs + gap; at < end; at += gap) {
      sim.at(at, () => {
        const up = cluster.upIds();
        const node = up[randomInt(rng, up.length)] as string;
        const mine = owned.get(node) as string[];
        if (mine.length > 0 && rng.next() < 0.5) {
          const [ep] = mine.splice(randomInt(rng, mine.length), 1);
          cluster.remove(node, table, ep as string);
        } else {
          addEndpoint(node);
        }
      });
    }
    if (crashRestart) {
      const victim = cluster.ids[1 + randomInt(rng, n - 1)] as string;
      sim.at(settleMs + 10_000, () => cluster.crash(victim));
      sim.at(settleMs + 40_000, () => cluster.restart(victim));
    }
  }
  sim.runUntil(end);
  const after = cluster.trafficTotals();
  const syncsAfter = syncSnapshots(cluster);
  // Let the last writes and the restarted node's syncs finish before checking agreement.
  sim.runFor(5_000);
  const seconds = measureMs / 1000;
  const perNodePerSecond: Record<string, TrafficTotals> = {};
  for (const [cls, t] of after) {
    const b = before.get(cls) ?? { messages: 0, payload: 0, wire: 0 };
    perNodePerSecond[cls] = { messages: (t.messages - b.messages) / n / seconds, payload: (t.payload - b.payload) / n / seconds, wire: (t.wire - b.wire) / n / seconds };
  }
  const tables = [...CLUSTER_TABLES, table];
  return {
    n,
    seed,
    measureMs,
    meanDegree: cluster.graph.meanDegree(),
    entries: cluster.node(cluster.ids[0] as string).tables.stored(table).length,
    perNodePerSecond,
    syncSnapshotsPerNodePerSecond: (syncsAfter - syncsBefore) / n / seconds,
    convergedAtEnd: cluster.storedConverged(tables) && cluster.membershipConverged(),
  };
}

function syncSnapshots(cluster: TablesCluster): number {
  const t = cluster.trafficTotals();
  return (t.get('sync/open')?.messages ?? 0) + (t.get('sync/answer')?.messages ?? 0);
}

function hex12(rng: Rng): string {
  let s = '';
  for (let i = 0; i < 12; i++) s += randomInt(rng, 16).toString(16);
  return s;
}

// ---- partitions -------------------------------------------------------------

export interface PartitionWrites {
  /** Keys written (set or deleted) on each side during the partition. */
  minorityKeys: string[];
  majorityKeys: string[];
  /** Keys written on both sides (a conflict that LWW must settle the same way everywhere). */
  conflicts: string[];
}

/**
 * Writes on both sides of a partition, spread over `spreadMs`: new
 * endpoints, overwrites and deletes of pre-partition entries, the same key
 * set on both sides, and a cluster-scoped `networks` entry per side.
 * `existing` maps pre-partition keys of `table` to their owners.
 */
export function writeDuringPartition(
  cluster: TablesCluster,
  sides: { minority: readonly string[]; majority: readonly string[] },
  table: string,
  existing: ReadonlyMap<string, string>,
  spreadMs: number,
  perSide: number,
): PartitionWrites {
  const { sim, rng } = cluster;
  const start = sim.now;
  const writes: PartitionWrites = { minorityKeys: [], majorityKeys: [], conflicts: [] };
  const pick = (ids: readonly string[]) => ids[randomInt(rng, ids.length)] as string;
  const at = (run: () => void) => sim.at(start + randomInt(rng, spreadMs), run);
  for (const [side, ids, keys] of [
    ['minority', sides.minority, writes.minorityKeys],
    ['majority', sides.majority, writes.majorityKeys],
  ] as const) {
    for (let i = 0; i < perSide; i++) {
      const node = pick(ids);
      const key = `${side}-${i}`;
      keys.push(key);
      at(() => cluster.write(node, table, key, bytes(`${node}/${key}`)));
    }
    // Overwrite and delete entries that the side's own nodes wrote before the split.
    const own = [...existing].filter(([, owner]) => ids.includes(owner));
    for (const [key, owner] of own.slice(0, 3)) {
      keys.push(key);
      at(() => cluster.write(owner, table, key, bytes(`${owner}/${key}/v2`)));
    }
    for (const [key, owner] of own.slice(3, 6)) {
      keys.push(key);
      at(() => cluster.remove(owner, table, key));
    }
    const networkWriter = pick(ids);
    at(() => cluster.write(networkWriter, 'networks', `net-${side}`, bytes(`created on the ${side} side`)));
  }
  for (let i = 0; i < 3; i++) {
    const key = `both-${i}`;
    writes.conflicts.push(key);
    const a = pick(sides.minority);
    const b = pick(sides.majority);
    at(() => cluster.write(a, table, key, bytes(`${a}/${key}`)));
    at(() => cluster.write(b, table, key, bytes(`${b}/${key}`)));
  }
  return writes;
}

function bytes(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

export interface PartitionHealOptions {
  n: number;
  seed: number;
  /** Fraction of nodes cut off. */
  fraction?: number;
  partitionMs?: number;
  network?: Partial<NetworkConfig>;
  connections?: Partial<ConnectionParams>;
}

export interface PartitionHealResult {
  seed: number;
  /** Heal until every node holds the same stored tables; null if not within 120 s. */
  storedMs: number | null;
  /** Heal until membership agrees and every node shows the same visible tables. */
  visibleMs: number | null;
  /** Sync exchanges (full and digest rounds) started between the heal and stored convergence. */
  syncs: number;
  /** Nodes with no connection to the other side of the cut. */
  isolated: number;
}

/**
 * The production path: a partition with writes on both sides, then heal;
 * connections dropped at a dead verdict are re-dialled every second, each
 * outbound one runs a sync, a member back from dead gets one, periodic
 * (digest) syncs continue. Nothing is driven by hand.
 */
export function runPartitionHeal(options: PartitionHealOptions): PartitionHealResult {
  const { n, seed } = options;
  const cluster = new TablesCluster({ n, seed, network: options.network ?? {}, connections: options.connections ?? {} });
  const { sim } = cluster;
  const table = endpointsTable('net1');
  const existing = new Map<string, string>();
  cluster.ids.forEach((id, i) => {
    const key = `before-${i}`;
    existing.set(key, id);
    sim.at(randomInt(cluster.rng, 1_000), () => cluster.write(id, table, key, bytes(`${id}/${key}`)));
  });
  sim.runUntil(5_000);
  const cut = Math.round((options.fraction ?? 0.3) * n);
  const minority = cluster.ids.slice(0, cut);
  const majority = cluster.ids.slice(cut);
  const side = (id: string) => minority.includes(id);
  const isolated = cluster.ids.filter((id) => cluster.graph.neighbours(id).every((peer) => side(peer) === side(id))).length;
  cluster.partition([minority, majority]);
  const partitionMs = options.partitionMs ?? 60_000;
  sim.runFor(20_000);
  writeDuringPartition(cluster, { minority, majority }, table, existing, 10_000, 10);
  sim.runFor(partitionMs - 20_000);
  const opens = (): number => {
    const t = cluster.trafficTotals();
    return (t.get('sync/open')?.messages ?? 0) + (t.get('sync/open-digest')?.messages ?? 0);
  };
  const syncsBefore = opens();
  cluster.heal();
  const healedAt = sim.now;
  const tables = [...CLUSTER_TABLES, table];
  const stored = pollUntil(cluster, healedAt + 120_000, () => cluster.storedConverged(tables));
  const storedMs = stored ? sim.now - healedAt : null;
  const syncs = opens() - syncsBefore;
  const visible = pollUntil(cluster, healedAt + 120_000, () => cluster.membershipConverged() && cluster.visibleConverged(tables));
  return { seed, storedMs, visibleMs: visible ? sim.now - healedAt : null, syncs, isolated };
}

/**
 * Runs until `done()` holds, checking every `stepMs` of simulated time
 * (whole-cluster checks are too costly to run after every event); the
 * answer is late by at most one step.
 */
export function pollUntil(cluster: TablesCluster, until: number, done: () => boolean, stepMs = 10): boolean {
  const { sim } = cluster;
  for (;;) {
    if (done()) return true;
    if (sim.now >= until) return false;
    sim.runUntil(Math.min(until, sim.now + stepMs));
  }
}
