// Takes a MetricsReading from the agent's running parts (whichever exist:
// before `weft init`/`join` there is no cluster) and decides readiness.
import type { ClusterNode } from '../cluster/cluster-node.ts';
import type { GossipTraffic } from '../cluster/gossip-traffic.ts';
import type { Overlay } from '../overlay/overlay.ts';
import type { ServicePlane } from '../services/service-plane.ts';
import type { DnsServer } from '../../dataplane/dns/server.ts';
import type { AllocationService } from '../allocation/allocation-service.ts';
import type { DurationHistogram } from '../../lib/histogram.ts';
import type { MemberState } from '../../controlplane/membership/index.ts';
import { networkOfTable } from '../../controlplane/node/topics.ts';
import type { ClusterReading, HistogramReading, MetricsReading, OverlayReading, Readiness } from './snapshot.ts';

export interface AgentParts {
  cluster: ClusterNode | undefined;
  traffic: GossipTraffic | undefined;
  overlay: Overlay | undefined;
  services: ServicePlane | undefined;
  dns: DnsServer | undefined;
  allocations: AllocationService | undefined;
}

export function readingOf(parts: AgentParts): MetricsReading {
  return { readiness: readinessOf(parts), cluster: clusterReading(parts), overlay: overlayReading(parts) };
}

/**
 * Joined: in a cluster. Synced: an anti-entropy round with a peer completed
 * since start (or there is no other member to sync with). Reconciled: the
 * last kernel programming run covered every network without error, and the
 * service plane programmed the load balancers at least once.
 */
export function readinessOf(parts: AgentParts): Readiness {
  const { cluster, overlay, services } = parts;
  const others = cluster?.roster.all().filter((r) => r.status === 'active' && r.nodeId !== cluster.nodeId).length ?? 0;
  const lastRun = overlay?.programmer.lastResult;
  return {
    joined: cluster !== undefined,
    synced: cluster !== undefined && (others === 0 || cluster.syncRounds.ok > 0),
    reconciled: lastRun !== undefined && lastRun.errors.length === 0 && (services?.lbStats.runs.ok ?? 0) > 0,
  };
}

function clusterReading({ cluster, traffic }: AgentParts): ClusterReading | undefined {
  if (!cluster) return undefined;
  const members: Record<MemberState, number> = { alive: 0, suspect: 0, dead: 0, left: 0 };
  for (const member of cluster.members()) members[member.state] += 1;
  const { counters: swim } = cluster.liveness;
  const tables = cluster.tables.tables;
  const tableEntries: Record<string, number> = {};
  for (const table of tables.tableNames()) {
    const family = networkOfTable(table) === undefined ? table : 'endpoints';
    tableEntries[family] = (tableEntries[family] ?? 0) + tables.list(table).length;
  }
  const { applied, relayed: _relayed, selfConflicts: _selfConflicts, ...refused } = tables.counters;
  return {
    members,
    swim: { sent: { ...swim.sent }, received: { ...swim.received }, suspicions: swim.suspicions, refutations: swim.refutations, dropped: { ...swim.dropped } },
    gossip: traffic ? { messages: traffic.messages, bytes: traffic.bytes } : { messages: { in: zeroTopics(), out: zeroTopics() }, bytes: { in: zeroTopics(), out: zeroTopics() } },
    syncRounds: { ...cluster.syncRounds },
    tableEntries,
    tableApplied: applied,
    tableRefused: refused,
  };
}

function overlayReading({ overlay, services, dns, allocations }: AgentParts): OverlayReading | undefined {
  if (!overlay || !services) return undefined;
  const programmer = overlay.programmer.stats;
  return {
    reconcile: { runs: { ...programmer.runs }, entries: { ...programmer.entries }, duration: histogram(programmer.duration) },
    lb: { runs: { ...services.lbStats.runs }, sandboxes: services.lbStats.sandboxes, duration: histogram(services.lbStats.duration) },
    health: services.healthStats(),
    allocation: allocationReading(allocations),
    dns: dns?.stats(),
  };
}

function allocationReading(allocations: AllocationService | undefined): OverlayReading['allocation'] {
  const out: OverlayReading['allocation'] = {};
  for (const space of allocations?.spaces() ?? []) {
    const stats = allocations?.stats(space);
    if (!stats) continue;
    // ip/<network id>: one kind for every network, so the label stays low-cardinality.
    const kind = space.split('/')[0] ?? space;
    const sum = (out[kind] ??= { free: 0, allocated: 0 });
    sum.free += stats.free;
    sum.allocated += stats.allocated;
  }
  return out;
}

function histogram(h: DurationHistogram): HistogramReading {
  return { bounds: h.bounds, ...h.snapshot() };
}

function zeroTopics(): Record<'cluster' | 'tables' | 'network' | 'other', number> {
  return { cluster: 0, tables: 0, network: 0, other: 0 };
}
