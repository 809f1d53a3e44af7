// The Prometheus exposition (names, types, labels, histogram shape), the
// counters it reads (histogram, SWIM, gossip topic families), the HTTP
// endpoint's paths and readiness answers, and the --metrics-addr option.
import test from 'ava';
import { request } from 'node:http';
import pino from 'pino';
import { WeftMetrics } from '../../agent/metrics/exposition.ts';
import { startMetricsServer } from '../../agent/metrics/metrics-server.ts';
import type { MetricsReading } from '../../agent/metrics/snapshot.ts';
import { DurationHistogram } from '../../lib/histogram.ts';
import { SwimCounters } from '../../agent/cluster/swim-counters.ts';
import { topicFamily } from '../../agent/cluster/gossip-traffic.ts';
import { networkTopic, CLUSTER_TABLE_TOPIC } from '../../controlplane/node/topics.ts';
import { CLUSTER_TOPIC } from '../../agent/cluster/cluster-gossip.ts';
import { configFromEnv, resolveConfig, validatePartial, ConfigError } from '../../agent/config.ts';

const histogram = (bounds: number[], values: number[]) => {
  const h = new DurationHistogram(bounds);
  for (const v of values) h.observe(v);
  return { bounds: h.bounds, ...h.snapshot() };
};

const topics = () => ({ cluster: 0, tables: 0, network: 0, other: 0 });

function fullReading(): MetricsReading {
  return {
    readiness: { joined: true, synced: true, reconciled: false },
    cluster: {
      members: { alive: 3, suspect: 1, dead: 0, left: 1 },
      swim: { sent: { ping: 10, ack: 9, pingReq: 1, nack: 0, gossip: 2 }, received: { ping: 9, ack: 10, pingReq: 0, nack: 0, gossip: 1 }, suspicions: 2, refutations: 1, dropped: { 'badSignature': 3 } },
      gossip: { messages: { in: { ...topics(), network: 4 }, out: { ...topics(), cluster: 1 } }, bytes: { in: { ...topics(), network: 400 }, out: { ...topics(), cluster: 832 } } },
      syncRounds: { ok: 5, failed: 1, differed: 2 },
      tableEntries: { networks: 2, endpoints: 7 },
      tableApplied: 12,
      tableRefused: { stale: 3, badSignatures: 1 },
    },
    overlay: {
      reconcile: { runs: { ok: 4, failed: 1 }, entries: { added: 6, removed: 2, replaced: 0 }, duration: histogram([0.01, 0.1], [0.005, 0.05, 0.5]) },
      lb: { runs: { ok: 2, failed: 0 }, sandboxes: 3, duration: histogram([0.01], [0.001]) },
      health: { results: { passed: 8, failed: 2 }, verdicts: { healthy: 1, unhealthy: 1 } },
      allocation: { vni: { free: 100, allocated: 2 }, ip: { free: 50, allocated: 5 } },
      dns: undefined,
    },
  };
}

/** `name{labels} value` lines of the exposition, by full sample name with labels. */
function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    out.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return out;
}

function types(text: string): Map<string, string> {
  return new Map([...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1]!, m[2]!]));
}

test('the exposition names, types and labels every metric by Prometheus conventions', async (t) => {
  const text = await new WeftMetrics().render(fullReading());
  const kinds = types(text);
  for (const [name, type] of kinds) {
    t.regex(name, /^weft_[a-z0-9_]+$/, `${name}: weft_ prefix, snake case`);
    if (type === 'counter') t.regex(name, /_total$/, `counter ${name} ends in _total`);
    if (type === 'gauge' || type === 'histogram') t.notRegex(name, /_total$/, `${type} ${name} does not end in _total`);
  }
  t.is(kinds.get('weft_cluster_members'), 'gauge');
  t.is(kinds.get('weft_swim_messages_sent_total'), 'counter');
  t.is(kinds.get('weft_dns_query_duration_seconds'), 'histogram');
  t.is(kinds.get('weft_reconcile_duration_seconds'), 'histogram');
  const s = samples(text);
  t.is(s.get('weft_cluster_members{state="suspect"}'), 1);
  t.is(s.get('weft_swim_messages_sent_total{kind="pingReq"}'), 1);
  t.is(s.get('weft_swim_suspicions_total'), 2);
  t.is(s.get('weft_swim_refutations_total'), 1);
  t.is(s.get('weft_swim_datagrams_dropped_total{reason="badSignature"}'), 3);
  t.is(s.get('weft_gossip_bytes_total{direction="out",topic="cluster"}'), 832);
  t.is(s.get('weft_gossip_messages_total{direction="in",topic="network"}'), 4);
  t.is(s.get('weft_sync_rounds_total{result="failed"}'), 1);
  t.is(s.get('weft_sync_rounds_total{result="differed"}'), 2);
  t.is(s.get('weft_table_entries{table="endpoints"}'), 7);
  t.is(s.get('weft_table_entries_rejected_total{reason="badSignatures"}'), 1);
  t.is(s.get('weft_reconcile_entries_changed_total{change="added"}'), 6);
  t.is(s.get('weft_health_checks_total{result="failed"}'), 2);
  t.is(s.get('weft_allocation_values{space="ip",state="allocated"}'), 5);
  t.is(s.get('weft_ready{check="reconciled"}'), 0);
  t.is(s.get('weft_ready{check="joined"}'), 1);
  // Histogram: cumulative buckets with le, +Inf last, _sum and _count.
  t.is(s.get('weft_reconcile_duration_seconds_bucket{le="0.01"}'), 1);
  t.is(s.get('weft_reconcile_duration_seconds_bucket{le="0.1"}'), 2);
  t.is(s.get('weft_reconcile_duration_seconds_bucket{le="+Inf"}'), 3);
  t.is(s.get('weft_reconcile_duration_seconds_count'), 3);
  t.true(Math.abs(s.get('weft_reconcile_duration_seconds_sum')! - 0.555) < 1e-9);
  // Without a DNS server (or a cluster) those series are absent, not zero.
  t.false([...s.keys()].some((k) => k.startsWith('weft_dns_query_duration_seconds_bucket')));
  t.false([...s.keys()].some((k) => k.startsWith('weft_dns_queries_total{')));
});

test('label values come from small fixed sets: no node, network or table ID reaches a label', async (t) => {
  const text = await new WeftMetrics().render(fullReading());
  const labelValues = [...text.matchAll(/[a-z_]+="([^"]*)"/g)].map((m) => m[1]!);
  for (const value of labelValues) t.regex(value, /^([A-Za-z]{1,16}|[0-9.+Inf]+)$/, `label value ${value}`);
});

test('a node outside any cluster exposes build info and readiness, and counters without series', async (t) => {
  const text = await new WeftMetrics().render({ readiness: { joined: false, synced: false, reconciled: false }, cluster: undefined, overlay: undefined });
  const s = samples(text);
  t.is(s.get('weft_ready{check="joined"}'), 0);
  t.false([...s.keys()].some((k) => k.startsWith('weft_cluster_members{')));
});

test('DurationHistogram: buckets are upper-inclusive and cumulative; bad bounds are refused', (t) => {
  const h = new DurationHistogram([0.001, 0.01]);
  for (const v of [0.001, 0.0011, 0.01, 5]) h.observe(v);
  t.deepEqual(h.snapshot().cumulative, [1, 3, 4]);
  t.is(h.snapshot().count, 4);
  t.throws(() => new DurationHistogram([0.1, 0.01]), { instanceOf: RangeError });
  t.throws(() => new DurationHistogram([]), { instanceOf: RangeError });
});

test('SwimCounters: sends and receipts by kind, suspicions of others, refutations of our own incarnation', (t) => {
  const c = new SwimCounters('me', 4);
  const view = (id: string, state: 'alive' | 'suspect', incarnation: number) => ({ id, address: 'x', state, incarnation, stateChangedAt: 0 });
  c.effect({ kind: 'send', to: 'b', address: 'x', message: { kind: 'ping', seq: 1, target: 'b', sourceAddress: 'y', updates: [] } });
  c.receivedMessage({ kind: 'ack', seq: 1, updates: [] });
  c.effect({ kind: 'member-changed', member: view('b', 'suspect', 1), previous: 'alive' });
  c.effect({ kind: 'member-changed', member: view('b', 'suspect', 1), previous: 'suspect' }); // a new voice, not a new suspicion
  c.effect({ kind: 'member-changed', member: view('me', 'alive', 5), previous: 'alive' });
  c.effect({ kind: 'member-changed', member: view('me', 'alive', 5), previous: 'alive' }); // same incarnation: no refutation
  t.is(c.sent.ping, 1);
  t.is(c.received.ack, 1);
  t.is(c.suspicions, 1);
  t.is(c.refutations, 1);
});

test('gossip topics are grouped into families', (t) => {
  t.is(topicFamily(CLUSTER_TOPIC), 'cluster');
  t.is(topicFamily(CLUSTER_TABLE_TOPIC), 'tables');
  t.is(topicFamily(networkTopic('0123abcd')), 'network');
  t.is(topicFamily('something/else'), 'other');
});

function get(port: number, path: string, method = 'GET'): Promise<{ status: number; body: string; type: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method }, (res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, type: String(res.headers['content-type']) }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('the endpoint: /healthz always, /readyz 503 naming the failing checks then 200, /metrics, 404 and 405', async (t) => {
  let reading = fullReading();
  const server = await startMetricsServer('127.0.0.1:0', () => reading, pino({ level: 'silent' }));
  t.teardown(() => server.close());
  t.deepEqual(await get(server.port, '/healthz'), { status: 200, body: 'ok\n', type: 'text/plain; charset=utf-8' });
  const notReady = await get(server.port, '/readyz');
  t.is(notReady.status, 503);
  t.is(notReady.body, 'not ready: reconciled\n');
  reading = { ...reading, readiness: { joined: true, synced: true, reconciled: true } };
  t.is((await get(server.port, '/readyz')).status, 200);
  const metrics = await get(server.port, '/metrics');
  t.is(metrics.status, 200);
  t.regex(metrics.type, /^text\/plain; version=0\.0\.4/);
  t.regex(metrics.body, /^weft_cluster_members\{state="alive"\} 3$/m);
  t.is((await get(server.port, '/metrics?x=1')).status, 200);
  t.is((await get(server.port, '/')).status, 404);
  t.is((await get(server.port, '/metrics', 'POST')).status, 405);
});

test('a busy address is refused with what to do', async (t) => {
  const first = await startMetricsServer('127.0.0.1:0', fullReading, pino({ level: 'silent' }));
  t.teardown(() => first.close());
  await t.throwsAsync(startMetricsServer(`127.0.0.1:${first.port}`, fullReading, pino({ level: 'silent' })), { message: /in use; pick another port with --metrics-addr/ });
});

test('--metrics-addr: off by default, IP:PORT from flags, file or WEFT_METRICS_ADDR, anything else refused', (t) => {
  t.is(resolveConfig().metricsAddr, '');
  t.is(resolveConfig(configFromEnv({ WEFT_METRICS_ADDR: '198.18.0.1:9470' })).metricsAddr, '198.18.0.1:9470');
  t.is(validatePartial({ metricsAddr: '' }, 'x').metricsAddr, '');
  for (const bad of ['9470', ':9470', 'localhost:9470', '127.0.0.1:0', '127.0.0.1:70000', '300.0.0.1:80', '127.0.0.1:9470/metrics']) {
    const error = t.throws(() => validatePartial({ metricsAddr: bad }, 'command-line flags', () => '--metrics-addr'), { instanceOf: ConfigError });
    t.regex(error?.message ?? '', /--metrics-addr: must be IP:PORT such as 127\.0\.0\.1:9470/);
  }
  t.throws(() => configFromEnv({ WEFT_METRICS_ADDR: 'nope' }), { message: /WEFT_METRICS_ADDR: must be IP:PORT/ });
});
