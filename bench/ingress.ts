// Published ports: wrk requests/s and p99 latency from an "outside" client (a
// namespace on the lab's underlay, not a cluster member) through (a) a port
// published on the backend's host (`weft run -p`, nftables DNAT), (b) the
// ingress routing mesh (`service create --publish`) on the backend's host,
// (c) the mesh on the other host (forwarded through the overlay), against (d)
// the backend's overlay address straight from a sandbox on the other host
// (VXLAN, no NAT). Rounds alternate so machine noise hits all alike. Then,
// per trial on a fresh network, the time from `service create --publish`
// (followed at once by starting one backend on h1) to the first answer on
// the published port of every host. Prints a table and writes
// bench/results/ingress.json.
// Usage: node bench/ingress.ts [rounds] [seconds] [trials]
import { execa } from 'execa';
import { writeFileSync, mkdirSync } from 'node:fs';
import { labUp, labDown, callAgent } from '../deploy/lab/lab.ts';
import { addUnderlayHost } from '../dataplane/testing/underlay.ts';
import { uniquePrefix, eventually } from '../test/helpers/weft-cli.ts';

const ROUNDS = Number(process.argv[2] ?? 3);
const SECONDS = Number(process.argv[3] ?? 5);
const TRIALS = Number(process.argv[4] ?? 3);
const CONNECTIONS = 32;
const prefix = uniquePrefix('i');
const OUTSIDE_IP = '198.18.3.200';
/** The backend: Node's HTTP server (fast enough that the path, not the server, is what differs). */
const SERVER = 'require("http").createServer((q, s) => s.end("ok\\n")).listen(80)';

interface Sample { rps: number; p99Ms: number }

function parseWrk(out: string): Sample {
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(out);
  const p99 = /^\s+99%\s+([\d.]+)(us|ms|s)\s*$/m.exec(out);
  if (!rps || !p99) throw new Error(`cannot read wrk's report:\n${out}`);
  const scale = { us: 0.001, ms: 1, s: 1000 }[p99[2] as 'us' | 'ms' | 's'];
  return { rps: Number(rps[1]), p99Ms: Number(p99[1]) * scale };
}

async function wrk(netns: string, url: string): Promise<Sample> {
  const r = await execa('ip', ['netns', 'exec', netns, 'wrk', '-t1', `-c${CONNECTIONS}`, `-d${SECONDS}s`, '--latency', url]);
  return parseWrk(String(r.stdout));
}

const curlOk = async (netns: string, url: string) =>
  (await execa('ip', ['netns', 'exec', netns, 'curl', '-s', '--max-time', '2', url], { reject: false })).exitCode === 0 || undefined;

const median = (xs: number[]): number => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)] ?? NaN;
const published: Sample[] = [];
const meshLocal: Sample[] = [];
const meshRemote: Sample[] = [];
const direct: Sample[] = [];
/** Per trial: ms from service create to the first answer on each host, and the slowest host. */
const firstAnswer: { perHost: number[]; everyHost: number }[] = [];
const service = (name: string, network: string, publish: string) => ({ name, network, ports: [{ port: 80, protocol: 'tcp' }], mode: 'vip', health: '', publish: [publish] });
try {
  const lab = await labUp({ hosts: 2, prefix });
  const [h1, h2] = lab.hosts;
  const outside = await addUnderlayHost(prefix, 'out', OUTSIDE_IP, lab.mtu);
  await callAgent(h1!, 'NetworkCreate', { name: 'perf', subnet: '', vni: 0, internal: false });
  type Sandbox = { netns: string; endpoints: Array<{ ip: string }> };
  await callAgent(h1!, 'ServiceCreate', service('web', 'perf', '9090:80'));
  const backend = await callAgent<Sandbox>(h1!, 'SandboxCreate', { networks: ['perf'], name: 'web', aliases: [], netns: '', command: [process.execPath, '-e', SERVER], publish: ['8080:80'], services: ['web'] });
  const client = await callAgent<Sandbox>(h2!, 'SandboxCreate', { networks: ['perf'], name: 'client', aliases: [], netns: '', command: [] });
  const urls = { published: `http://${h1!.ip}:8080/`, meshLocal: `http://${h1!.ip}:9090/`, meshRemote: `http://${h2!.ip}:9090/`, direct: `http://${backend.endpoints[0]!.ip}/` };
  await eventually('the published port to answer', () => curlOk(outside, urls.published), 30_000);
  await eventually('the mesh on the backend\'s host to answer', () => curlOk(outside, urls.meshLocal), 60_000);
  await eventually('the mesh on the other host to answer', () => curlOk(outside, urls.meshRemote), 60_000);
  await eventually('the overlay address to answer', () => curlOk(client.netns, urls.direct), 30_000);
  for (let round = 0; round < ROUNDS; round++) {
    published.push(await wrk(outside, urls.published));
    meshLocal.push(await wrk(outside, urls.meshLocal));
    meshRemote.push(await wrk(outside, urls.meshRemote));
    direct.push(await wrk(client.netns, urls.direct));
  }
  for (let trial = 0; trial < TRIALS; trial++) {
    const port = 9100 + trial;
    await callAgent(h1!, 'NetworkCreate', { name: `t${trial}`, subnet: '', vni: 0, internal: false });
    const started = performance.now();
    await callAgent(h1!, 'ServiceCreate', service(`t${trial}`, `t${trial}`, `${port}:80`));
    await callAgent(h1!, 'SandboxCreate', { networks: [`t${trial}`], name: '', aliases: [], netns: '', command: [process.execPath, '-e', SERVER], services: [`t${trial}`] });
    const perHost = await Promise.all(lab.hosts.map(async (h) => {
      await eventually(`${h.name}:${port} to answer`, () => curlOk(outside, `http://${h.ip}:${port}/`), 120_000);
      return performance.now() - started;
    }));
    firstAnswer.push({ perHost, everyHost: Math.max(...perHost) });
  }
} finally {
  await labDown(prefix);
}

const summary = (xs: Sample[]) => ({ rps: median(xs.map((x) => x.rps)), p99Ms: median(xs.map((x) => x.p99Ms)) });
const a = summary(published);
const b = summary(meshLocal);
const c = summary(meshRemote);
const d = summary(direct);
const ratios = { a: a.rps / d.rps, b: b.rps / d.rps, c: c.rps / d.rps };
const row = (label: string, x: { rps: number; p99Ms: number }, ratio?: number, goal?: string) =>
  console.log(`${label.padEnd(56)} ${x.rps.toFixed(0).padStart(10)}   ${x.p99Ms.toFixed(2).padStart(6)}${ratio === undefined ? '' : `   ${ratio.toFixed(2)}x of (d) (goal >= ${goal})`}`);
console.log(`published ports, wrk -t1 -c${CONNECTIONS} ${SECONDS} s x ${ROUNDS} rounds (median)`.padEnd(56) + '   requests/s   p99 ms');
row('(a) outside -> host-published port (DNAT)', a, ratios.a, '0.9');
row('(b) outside -> mesh port on the backend\'s host', b, ratios.b, '0.9');
row('(c) outside -> mesh port on a host without a backend', c, ratios.c, '0.7');
row('(d) sandbox on another host -> overlay address', d);
const slowest = firstAnswer.map((f) => f.everyHost);
console.log(`service create --publish (+ one backend) -> first answer on every host, ${TRIALS} trials on fresh networks: median ${median(slowest).toFixed(0)} ms, max ${Math.max(...slowest).toFixed(0)} ms`);
mkdirSync('bench/results', { recursive: true });
writeFileSync('bench/results/ingress.json', JSON.stringify({
  rounds: ROUNDS, seconds: SECONDS, connections: CONNECTIONS, published, meshLocal, meshRemote, direct,
  median: { published: a, meshLocal: b, meshRemote: c, direct: d }, ratios, firstAnswer, date: new Date().toISOString(),
}, null, 2) + '\n');
