// Metrics on a real lab: each agent serves /metrics, /healthz and /readyz
// on its underlay address (--metrics-addr). A host that has not joined is
// alive but not ready; after `weft join` it becomes ready; `promtool check
// metrics` accepts every page; and a real Prometheus, run inside h1's
// namespace with a private config, storage and loopback listen address,
// scrapes both agents: its query API returns weft metrics with up == 1.
import test from 'ava';
import { execa, type ResultPromise } from 'execa';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { labUp, labDown, callAgent, type LabState, type LabHost } from '../../deploy/lab/lab.ts';
import { eventually, httpGetIn as getIn, uniquePrefix } from '../helpers/weft-cli.ts';

const prefix = uniquePrefix('m');
const METRICS_PORT = 9470;
const PROMETHEUS = '127.0.0.1:9090'; // loopback of h1's namespace: nobody else's
const dir = mkdtempSync(join(tmpdir(), 'weft-metrics-'));
let lab: LabState;
let prometheus: ResultPromise | undefined;

test.before(async () => {
  // Two hosts, one member: h2 runs an agent that has not joined yet.
  // Each agent listens in its own namespace, so one address serves them all.
  lab = await labUp({ hosts: 2, members: 1, prefix, agentConfig: { metricsAddr: `0.0.0.0:${METRICS_PORT}` }, logLevel: 'info' });
});

test.after.always(async () => {
  if (prometheus) {
    prometheus.kill('SIGKILL');
    await prometheus.catch(() => undefined);
  }
  await labDown(prefix);
  rmSync(dir, { recursive: true, force: true });
});

const host = (name: string): LabHost => lab.hosts.find((h) => h.name === name)!;

const agentUrl = (h: LabHost, path: string): string => `http://${h.ip}:${METRICS_PORT}${path}`;

async function promtool(text: string): Promise<{ exitCode: number; output: string }> {
  const r = await execa('promtool', ['check', 'metrics'], { input: text, reject: false });
  return { exitCode: r.exitCode ?? -1, output: `${String(r.stdout)}${String(r.stderr)}` };
}

function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

test.serial('an agent outside any cluster is live but not ready, and promtool accepts its metrics', async (t) => {
  const h2 = host('h2');
  t.deepEqual(await getIn(h2.netns, agentUrl(h2, '/healthz')), { status: 200, body: 'ok\n' });
  const ready = await getIn(h2.netns, agentUrl(h2, '/readyz'));
  t.is(ready.status, 503);
  t.is(ready.body, 'not ready: joined, synced, reconciled\n');
  const metrics = await getIn(h2.netns, agentUrl(h2, '/metrics'));
  t.is(metrics.status, 200);
  const check = await promtool(metrics.body);
  t.is(check.exitCode, 0, check.output);
  t.is(sample(metrics.body, 'weft_ready{check="joined"}'), 0);
});

test.serial('after joining it becomes ready, and both agents\' metrics show the cluster', async (t) => {
  const [h1, h2] = [host('h1'), host('h2')];
  await callAgent(h2, 'Join', { token: lab.token, address: `${h1.ip}:2377` });
  await eventually('h2 to be ready', async () => (await getIn(h2.netns, agentUrl(h2, '/readyz'))).status === 200, 60_000);
  for (const h of [h1, h2]) {
    const text = await eventually(`${h.name} to count two alive members`, async () => {
      const body = (await getIn(h.netns, agentUrl(h, '/metrics'))).body;
      return sample(body, 'weft_cluster_members{state="alive"}') === 2 ? body : undefined;
    }, 60_000);
    const check = await promtool(text);
    t.is(check.exitCode, 0, `${h.name}: ${check.output}`);
    t.is(sample(text, 'weft_ready{check="synced"}'), 1);
    t.true((sample(text, 'weft_sync_rounds_total{result="ok"}') ?? 0) > 0, `${h.name} completed a sync round`);
    t.true((sample(text, 'weft_gossip_bytes_total{direction="out",topic="cluster"}') ?? 0) > 0, `${h.name} published its member record`);
    t.true((sample(text, 'weft_reconcile_runs_total{result="ok"}') ?? 0) > 0);
  }
  const probes = await eventually('h1 to have probed h2', async () => {
    const n = sample((await getIn(h1.netns, agentUrl(h1, '/metrics'))).body, 'weft_swim_messages_sent_total{kind="ping"}') ?? 0;
    return n > 0 && n;
  });
  t.true(probes > 0);
});

interface QueryResult { status: string; data: { result: Array<{ metric: Record<string, string>; value: [number, string] }> } }

async function query(expression: string): Promise<QueryResult['data']['result']> {
  const r = await getIn(host('h1').netns, `http://${PROMETHEUS}/api/v1/query?query=${encodeURIComponent(expression)}`);
  if (r.status !== 200) throw new Error(`query ${expression}: HTTP ${r.status} ${r.body}`);
  return (JSON.parse(r.body) as QueryResult).data.result;
}

test.serial('a real Prometheus scrapes the lab agents: up == 1 and weft metrics in its query API', async (t) => {
  const targets = lab.hosts.map((h) => `'${h.ip}:${METRICS_PORT}'`).join(', ');
  const config = join(dir, 'prometheus.yml');
  writeFileSync(config, `global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: weft\n    static_configs:\n      - targets: [${targets}]\n`);
  prometheus = execa('ip', ['netns', 'exec', host('h1').netns, 'prometheus', `--config.file=${config}`, `--storage.tsdb.path=${join(dir, 'data')}`,
    `--web.listen-address=${PROMETHEUS}`, '--log.level=warn'], { reject: false, all: true });
  const up = await eventually('Prometheus to scrape both agents', async () => {
    const result = await query('up{job="weft"} == 1').catch(() => []);
    return result.length === lab.hosts.length && result;
  }, 90_000);
  t.deepEqual(up.map((r) => r.metric['instance']).sort(), lab.hosts.map((h) => `${h.ip}:${METRICS_PORT}`).sort());
  const members = await eventually('weft_cluster_members in Prometheus', async () => {
    const result = await query('weft_cluster_members{job="weft",state="alive"}');
    return result.length === lab.hosts.length && result;
  }, 30_000);
  for (const r of members) t.is(r.value[1], '2', `${r.metric['instance']} reports two alive members`);
  const rate = await query('sum(weft_swim_messages_sent_total{kind="ping"})');
  t.true(Number(rate[0]?.value[1]) > 0, 'SWIM probes reach Prometheus as a counter');
});

test.serial('a quiet cluster writes nothing at info or above for longer than its periodic sync and reconcile', async (t) => {
  // Both run every 30 s; Prometheus keeps scraping every second meanwhile.
  const offsets = lab.hosts.map((h) => statSync(h.logFile).size);
  await new Promise((resolve) => setTimeout(resolve, 40_000));
  for (const [i, h] of lab.hosts.entries()) {
    // A suspicion on a loaded machine (refuted within milliseconds) is an event worth its line, not
    // periodic noise: failure-detection changes are left out; anything else is a line a quiet cluster should not write.
    const lines = readFileSync(h.logFile, 'utf8').slice(offsets[i]).split('\n').filter((l) => l.trim() !== '' && !l.includes('"msg":"member state changed"'));
    t.deepEqual(lines, [], `${h.name} logged while nothing changed`);
  }
});

test.serial('an unreachable member\'s failed dials are warned about, sampled: a few lines, not one per second', async (t) => {
  const [h1, h2] = [host('h1'), host('h2')];
  const offset = statSync(h1.logFile).size;
  process.kill(h2.pid, 'SIGKILL');
  const dialWarnings = (): Array<Record<string, unknown>> => readFileSync(h1.logFile, 'utf8').slice(offset).split('\n').filter((l) => l.includes('could not reach a member'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  await eventually('h1 to warn that it cannot reach h2', async () => dialWarnings().length > 0, 60_000);
  // The dialer retries every second: over 15 more seconds that is 15 failures or so, of which 3 per
  // 60 s interval are logged; the window may straddle the end of an interval begun before the kill.
  await new Promise((resolve) => setTimeout(resolve, 15_000));
  const warnings = dialWarnings();
  t.true(warnings.length >= 1 && warnings.length <= 6, JSON.stringify(warnings));
  for (const w of warnings) t.is(w['level'], 40);
});
