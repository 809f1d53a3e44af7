// Docker containers on weft networks, on a 2-host lab with a dockerd per host
// (test/helpers/lab-docker.ts), both with --dns at weft's resolver.
//  1. `docker run -d` on h1 until a container on h2 reaches it by name (ping,
//     the name resolved by Docker's 127.0.0.11 forwarding to weft), against the
//     local baseline: Docker's own bridge network, both containers on h1.
//  2. Churn: N containers started and removed on each host (in parallel per
//     host): wall time, addresses still held afterwards (goal 0), agent RSS
//     before and after.
// Prints a table and writes bench/results/containers.json.
// Usage: node_modules/.bin/node bench/containers.ts [trials] [containers per host]
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { labUp, labDown, type LabHost } from '../deploy/lab/lab.ts';
import { eventually, uniquePrefix, weftOn } from '../test/helpers/weft-cli.ts';
import { dockerOn, importBusybox, startLabDocker, stopLabDocker, type LabDocker } from '../test/helpers/lab-docker.ts';

const TRIALS = Number(process.argv[2] ?? 20);
const CHURN_PER_HOST = Number(process.argv[3] ?? 100);
const WEFT_DNS = '198.19.255.1';
const prefix = uniquePrefix('bc');

function quantile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
}

async function must(what: string, run: Promise<{ exitCode?: number | undefined; stderr: unknown }>): Promise<void> {
  const r = await run;
  if (r.exitCode !== 0) throw new Error(`${what}: ${String(r.stderr)}`);
}

function rssMb(host: LabHost): number {
  const line = readFileSync(`/proc/${host.pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmRSS:'));
  return Math.round(Number(/(\d+)/.exec(line ?? '')?.[1] ?? NaN) / 1024);
}

function heldAddresses(host: LabHost): number {
  return (JSON.parse(readFileSync(join(host.dataDir, 'cluster', 'docker-plugin.json'), 'utf8')) as { addresses: string[] }).addresses.length;
}

/** From `docker run -d NAME` on `runOn` until `probe` on `probeOn` pings NAME, in ms. */
async function runUntilReached(runOn: LabDocker, probeOn: LabDocker, probe: string, network: string, name: string, image: string): Promise<number> {
  const started = process.hrtime.bigint();
  // The probe loops inside its container: no docker exec per attempt.
  const reached = dockerOn(probeOn, ['exec', probe, 'timeout', '60', 'sh', '-c', `until ping -c 1 -W 1 ${name} >/dev/null 2>&1; do sleep 0.02; done`]);
  await must(`docker run ${name}`, dockerOn(runOn, ['run', '-d', '--name', name, '--network', network, image, 'sleep', '3600']));
  await must(`${probe} reaches ${name}`, reached);
  return Number(process.hrtime.bigint() - started) / 1e6;
}

const reach: Record<'weft' | 'bridge', number[]> = { weft: [], bridge: [] };
let churn = { containers: 0, failedRuns: 0, seconds: 0, addressesHeld: 0, endpointsLeft: 0, rssBeforeMb: [0, 0], rssAfterMb: [0, 0] };
const failures: string[] = [];
const dockers: LabDocker[] = [];
try {
  const lab = await labUp({ hosts: 2, prefix });
  for (const host of lab.hosts) dockers.push(await startLabDocker(host, ['--dns', WEFT_DNS]));
  const [h1, h2] = dockers as [LabDocker, LabDocker];
  await must('weft network create', weftOn(lab.hosts[0]!, ['network', 'create', 'bench']));
  const subnet = (JSON.parse((await weftOn(lab.hosts[0]!, ['network', 'inspect', 'bench'])).stdout) as { subnet: string }).subnet;
  let image = '';
  for (const docker of dockers) {
    image = await importBusybox(docker);
    await must('docker network create', dockerOn(docker, ['network', 'create', '-d', 'weft', '--ipam-driver', 'weft', '--subnet', subnet, 'bench']));
  }
  // Docker's own bridge on h1 (inside the lab host's namespace; dockerd runs without iptables).
  await must('bridge network', dockerOn(h1, ['network', 'create', '-d', 'bridge', '--subnet', '198.51.100.0/24', 'local']));
  await must('weft probe', dockerOn(h2, ['run', '-d', '--name', 'probe', '--network', 'bench', image, 'sleep', '3600']));
  await must('bridge probe', dockerOn(h1, ['run', '-d', '--name', 'probeb', '--network', 'local', image, 'sleep', '3600']));
  await eventually('the probe attached', async () => (await weftOn(lab.hosts[1]!, ['endpoints', '--json'])).stdout.includes('"probe"'), 60_000);
  for (let i = 0; i < TRIALS + 1; i++) {
    const order = i % 2 === 0 ? (['weft', 'bridge'] as const) : (['bridge', 'weft'] as const);
    for (const kind of order) {
      const name = `${kind[0]}${i}`;
      const ms = kind === 'weft' ? await runUntilReached(h1, h2, 'probe', 'bench', name, image) : await runUntilReached(h1, h1, 'probeb', 'local', name, image);
      await must(`rm ${name}`, dockerOn(h1, ['rm', '-f', name]));
      if (i > 0) reach[kind].push(ms); // the first of each pays for cold caches
    }
  }
  for (const probe of [[h2, 'probe'], [h1, 'probeb']] as const) await must('rm probe', dockerOn(probe[0], ['rm', '-f', probe[1]]));
  await eventually('probes released', async () => lab.hosts.every((h) => heldAddresses(h) === 0), 60_000);

  const rssBeforeMb = lab.hosts.map(rssMb);
  const started = process.hrtime.bigint();
  await Promise.all(dockers.map(async (docker, index) => {
    for (let i = 0; i < CHURN_PER_HOST; i++) {
      // A failed run is counted, not fatal: what it leaves behind is what this measures.
      const r = await dockerOn(docker, ['run', '-d', '--name', `n${index}x${i}`, '--network', 'bench', image, 'sleep', '3600']);
      if (r.exitCode !== 0) failures.push(String(r.stderr).trim());
    }
    const names = Array.from({ length: CHURN_PER_HOST }, (_, i) => `n${index}x${i}`);
    for (let i = 0; i < names.length; i += 20) await dockerOn(docker, ['rm', '-f', ...names.slice(i, i + 20)]);
  }));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  // Settled: what is still held after the removals is a leak.
  await eventually('churn settled', async () => lab.hosts.every((h) => heldAddresses(h) === 0), 30_000).catch(() => undefined);
  const left = (await Promise.all(lab.hosts.map(async (h) => JSON.parse((await weftOn(h, ['endpoints', '--json'])).stdout) as unknown[]))).flat().length;
  churn = {
    containers: CHURN_PER_HOST * 2, failedRuns: failures.length, seconds: Math.round(seconds * 10) / 10,
    addressesHeld: lab.hosts.reduce((n, h) => n + heldAddresses(h), 0), endpointsLeft: left, rssBeforeMb, rssAfterMb: lab.hosts.map(rssMb),
  };
} finally {
  for (const docker of dockers) await stopLabDocker(docker);
  await labDown(prefix);
}

const rows = (['weft', 'bridge'] as const).map((kind) => ({
  network: kind === 'weft' ? 'weft (h1 -> h2)' : 'docker bridge (h1 only)',
  trials: reach[kind].length,
  p50Ms: Math.round(quantile(reach[kind], 0.5)),
  p99Ms: Math.round(quantile(reach[kind], 0.99)),
}));
console.log('docker run until reached by name   trials   p50 ms   p99 ms');
for (const r of rows) console.log(`${r.network.padEnd(35)}${String(r.trials).padStart(6)}${String(r.p50Ms).padStart(9)}${String(r.p99Ms).padStart(9)}`);
for (const failure of new Set(failures)) console.log(`failed docker run: ${failure}`);
console.log(`churn: ${churn.containers} containers (${churn.failedRuns} runs failed) started and removed on 2 hosts in ${churn.seconds} s; addresses still held ${churn.addressesHeld}, endpoints left ${churn.endpointsLeft}; agent RSS ${churn.rssBeforeMb.join('/')} -> ${churn.rssAfterMb.join('/')} MB`);
const out = fileURLToPath(new URL('./results/', import.meta.url));
mkdirSync(out, { recursive: true });
writeFileSync(join(out, 'containers.json'), JSON.stringify({ date: new Date().toISOString(), rows, churn, failures, raw: reach }, null, 1));
