// One reading of everything the metrics report, taken when Prometheus
// scrapes: the counters and histograms the planes already keep, plus
// gauges computed from current state (members, table entries, allocation
// space). Plain data, so the exposition can be tested without an agent.
import type { MemberState } from '../../controlplane/membership/index.ts';
import type { SwimKind } from '../cluster/swim-counters.ts';
import type { GossipDirection, TopicFamily } from '../cluster/gossip-traffic.ts';
import type { DnsServerStats } from '../../dataplane/dns/server.ts';

export interface HistogramReading {
  bounds: readonly number[];
  cumulative: number[];
  sum: number;
  count: number;
}

export interface ClusterReading {
  members: Record<MemberState, number>;
  swim: { sent: Record<SwimKind, number>; received: Record<SwimKind, number>; suspicions: number; refutations: number; dropped: Record<string, number> };
  gossip: { messages: Record<GossipDirection, Record<TopicFamily, number>>; bytes: Record<GossipDirection, Record<TopicFamily, number>> };
  /** differed: periodic digest rounds whose hashes differed, so a full round followed (also counted in ok). */
  syncRounds: { ok: number; failed: number; differed: number };
  /** Visible entries per table family (every network's endpoints table is one family). */
  tableEntries: Record<string, number>;
  /** Entries received and applied, and refused by reason (controlplane/tables counters). */
  tableApplied: number;
  tableRefused: Record<string, number>;
}

export interface OverlayReading {
  reconcile: { runs: { ok: number; failed: number }; entries: { added: number; removed: number; replaced: number }; duration: HistogramReading };
  lb: { runs: { ok: number; failed: number }; sandboxes: number; duration: HistogramReading };
  health: { results: { passed: number; failed: number }; verdicts: { healthy: number; unhealthy: number } };
  /** Values this node owns in each space kind (vni, subnet, ip: every network's addresses together). */
  allocation: Record<string, { free: number; allocated: number }>;
  dns: (DnsServerStats & { latencyBounds: readonly number[] }) | undefined;
}

export interface Readiness {
  joined: boolean;
  synced: boolean;
  reconciled: boolean;
}

export interface MetricsReading {
  readiness: Readiness;
  cluster: ClusterReading | undefined;
  overlay: OverlayReading | undefined;
}
