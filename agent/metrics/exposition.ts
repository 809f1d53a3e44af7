// The Prometheus exposition of a MetricsReading (snapshot.ts), with
// prom-client. Each metric reads the reading taken for the current scrape in
// its collect() callback, so nothing is incremented on the agent's hot paths.
// Counters are cumulative since the agent (or its cluster membership)
// started; a restart resets them, which rate() handles. Labels take only a
// few fixed values each (states, kinds, results, topic and table families).
import { Counter, Gauge, Registry, type Metric } from 'prom-client';
import { WEFT_VERSION } from '../version.ts';
import type { HistogramReading, MetricsReading, OverlayReading, ClusterReading } from './snapshot.ts';

type Labels = Record<string, string>;
type Sample = [Labels, number];

export class WeftMetrics {
  readonly registry = new Registry();
  #reading: MetricsReading | undefined;

  constructor() {
    this.#define();
  }

  /** The text exposition for one scrape of `reading`. */
  async render(reading: MetricsReading): Promise<string> {
    this.#reading = reading;
    try {
      return await this.registry.metrics();
    } finally {
      this.#reading = undefined;
    }
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  #cluster(): ClusterReading | undefined {
    return this.#reading?.cluster;
  }

  #overlay(): OverlayReading | undefined {
    return this.#reading?.overlay;
  }

  #gauge(name: string, help: string, labelNames: string[], samples: () => Sample[]): void {
    const registers = [this.registry];
    new Gauge({ name, help, labelNames, registers, collect() {
      this.reset();
      for (const [labels, value] of samples()) this.set(labels, value);
    } });
  }

  #counter(name: string, help: string, labelNames: string[], samples: () => Sample[]): void {
    const registers = [this.registry];
    new Counter({ name, help, labelNames, registers, collect() {
      this.reset();
      for (const [labels, value] of samples()) this.inc(labels, value);
    } });
  }

  #histogram(name: string, help: string, read: () => HistogramReading | undefined): void {
    this.registry.registerMetric(collectedHistogram(name, help, read));
  }

  #define(): void {
    const c = () => this.#cluster();
    const o = () => this.#overlay();
    this.#gauge('weft_build_info', 'Version of the running agent (always 1).', ['version'], () => [[{ version: WEFT_VERSION }, 1]]);
    this.#gauge('weft_ready', 'Readiness checks of /readyz: 1 when the check holds.', ['check'], () =>
      Object.entries(this.#reading?.readiness ?? {}).map(([check, ok]) => [{ check }, ok ? 1 : 0]));
    // Cluster plane.
    this.#gauge('weft_cluster_members', 'Cluster members by failure-detection state, this node included.', ['state'], () => byKey(c()?.members, 'state'));
    this.#counter('weft_swim_messages_sent_total', 'SWIM messages sent, by kind (ping = direct probe, pingReq = indirect probe request).', ['kind'], () => byKey(c()?.swim.sent, 'kind'));
    this.#counter('weft_swim_messages_received_total', 'SWIM messages received from members, by kind.', ['kind'], () => byKey(c()?.swim.received, 'kind'));
    this.#counter('weft_swim_suspicions_total', 'Members this node\'s view turned from alive to suspect.', [], () => one(c()?.swim.suspicions));
    this.#counter('weft_swim_refutations_total', 'Times this node raised its incarnation to refute a suspicion or death claim about itself.', [], () => one(c()?.swim.refutations));
    this.#counter('weft_swim_datagrams_dropped_total', 'SWIM datagrams dropped unread, by reason (notMember, undecryptable, badSignature (also: not for this node), badPacket, oversized).', ['reason'], () => byKey(c()?.swim.dropped, 'reason'));
    this.#counter('weft_gossip_messages_total', 'Gossipsub messages published (out) and received (in), by topic family.', ['direction', 'topic'], () => byDirection(c()?.gossip.messages));
    this.#counter('weft_gossip_bytes_total', 'Gossipsub message payload bytes published (out) and received (in), by topic family.', ['direction', 'topic'], () => byDirection(c()?.gossip.bytes));
    this.#counter('weft_sync_rounds_total', 'Anti-entropy sync rounds with a peer, as initiator or responder, by result (differed: periodic digest rounds that found the peer\'s roster or liveness hash unlike ours, so a full round followed; also counted in ok).', ['result'], () => byKey(c()?.syncRounds, 'result'));
    this.#gauge('weft_table_entries', 'Visible entries in the replicated tables, by table (all networks\' endpoint tables as "endpoints").', ['table'], () => byKey(c()?.tableEntries, 'table'));
    this.#counter('weft_table_entries_applied_total', 'Table entries received (gossip or sync) and applied.', [], () => one(c()?.tableApplied));
    this.#counter('weft_table_entries_rejected_total', 'Table entries received and not applied, by reason (stale: a version older than the one held; the rest are refusals).', ['reason'], () => byKey(c()?.tableRefused, 'reason'));
    // Data plane.
    this.#counter('weft_reconcile_runs_total', 'Runs of the FDB/neighbour reconciler, by result (failed: at least one network failed).', ['result'], () => byKey(o()?.reconcile.runs, 'result'));
    this.#histogram('weft_reconcile_duration_seconds', 'Time of one reconciler run over every local network.', () => o()?.reconcile.duration);
    this.#counter('weft_reconcile_entries_changed_total', 'FDB and neighbour entries the reconciler changed in the kernel, by change.', ['change'], () => byKey(o()?.reconcile.entries, 'change'));
    this.#counter('weft_lb_updates_total', 'Service plane runs that updated the load-balancing tables, by result.', ['result'], () => byKey(o()?.lb.runs, 'result'));
    this.#histogram('weft_lb_update_duration_seconds', 'Time of one service plane run (views, health targets, nftables of every local sandbox).', () => o()?.lb.duration);
    this.#counter('weft_lb_sandbox_tables_written_total', 'Sandbox load-balancing tables rewritten by those runs.', [], () => one(o()?.lb.sandboxes));
    this.#counter('weft_health_checks_total', 'Health checks of local backends, by result.', ['result'], () => byKey(o()?.health.results, 'result'));
    this.#gauge('weft_health_backends', 'Checked local backends by current verdict.', ['state'], () => byKey(o()?.health.verdicts, 'state'));
    this.#gauge('weft_allocation_values', 'Values of the allocation spaces this node owns, by space kind and state.', ['space', 'state'], () =>
      Object.entries(o()?.allocation ?? {}).flatMap(([space, v]): Sample[] => [[{ space, state: 'free' }, v.free], [{ space, state: 'allocated' }, v.allocated]]));
    // DNS.
    const dns = () => o()?.dns;
    this.#counter('weft_dns_queries_total', 'DNS queries received by the embedded resolver, by question type (dropped packets are not typed).', ['type'], () => byKey(dns()?.byType, 'type'));
    this.#counter('weft_dns_responses_total', 'DNS queries by outcome: answered from cluster state (cache hits included), forwarded, or refused/servfail/formerr/notimp/dropped.', ['result'], () => {
      const s = dns();
      if (!s) return [];
      const results = { answered: s.answered, forwarded: s.forwarded, refused: s.refused, servfail: s.servfail, formerr: s.formerr, notimp: s.notimp, dropped: s.dropped };
      return byKey(results, 'result');
    });
    this.#counter('weft_dns_cache_hits_total', 'Cluster answers served from the answer cache.', [], () => one(dns()?.cached));
    this.#counter('weft_dns_forwarded_queries_total', 'Queries for names outside the cluster forwarded upstream.', [], () => one(dns()?.forwarded));
    this.#counter('weft_dns_upstream_failures_total', 'Forwarded queries no upstream answered (the client got SERVFAIL).', [], () => one(dns()?.forwardFailures));
    this.#histogram('weft_dns_query_duration_seconds', 'Time from a query\'s arrival to the reply, forwarded queries included.', () => {
      const s = dns();
      return s && { ...s.latency, bounds: s.latencyBounds };
    });
  }
}

function one(value: number | undefined): Sample[] {
  return value === undefined ? [] : [[{}, value]];
}

function byKey(values: Record<string, number> | undefined, label: string): Sample[] {
  return Object.entries(values ?? {}).map(([key, value]) => [{ [label]: key }, value]);
}

function byDirection(values: Record<string, Record<string, number>> | undefined): Sample[] {
  return Object.entries(values ?? {}).flatMap(([direction, byTopic]) => Object.entries(byTopic).map(([topic, value]): Sample => [{ direction, topic }, value]));
}

/**
 * A histogram whose buckets were counted elsewhere (lib/histogram.ts):
 * prom-client's Histogram only counts its own observations, so this object
 * gives the registry the same shape its histograms give (name, help, type,
 * values with le labels, _sum and _count) from the counted buckets.
 */
function collectedHistogram(name: string, help: string, read: () => HistogramReading | undefined): Metric {
  const metric = {
    name,
    help,
    type: 'histogram',
    aggregator: 'sum',
    get: async () => {
      const h = read();
      const values = h === undefined ? [] : [
        ...h.cumulative.map((value, i) => ({ metricName: `${name}_bucket`, labels: { le: i < h.bounds.length ? String(h.bounds[i]) : '+Inf' }, value })),
        { metricName: `${name}_sum`, labels: {}, value: h.sum },
        { metricName: `${name}_count`, labels: {}, value: h.count },
      ];
      return { name, help, type: 'histogram', aggregator: 'sum', values };
    },
    reset: () => undefined,
  };
  return metric as unknown as Metric;
}
