// Published ports: wrk requests/s and p99 latency from an "outside" client (a
// namespace on the lab's underlay, not a cluster member) through (a) a port
// published on the backend's host (`weft run -p`, nftables DNAT), against (d)
// the backend's overlay address straight from a sandbox on the other host
// (VXLAN, no NAT). Rounds alternate so machine noise hits both alike. The
// ingress routing mesh ((b), (c) of issue 15) is not built: not measured.
// Prints a table and writes bench/results/ingress.json.
// Usage: node bench/ingress.ts [rounds] [seconds]
import { execa } from 'execa';
import { writeFileSync, mkdirSync } from 'node:fs';
import { labUp, labDown, callAgent } from '../deploy/lab/lab.ts';
import { addUnderlayHost } from '../dataplane/testing/underlay.ts';
import { uniquePrefix, eventually } from '../test/helpers/weft-cli.ts';

const ROUNDS = Number(process.argv[2] ?? 3);
const SECONDS = Number(process.argv[3] ?? 5);
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
const direct: Sample[] = [];
try {
  const lab = await labUp({ hosts: 2, prefix });
  const [h1, h2] = lab.hosts;
  const outside = await addUnderlayHost(prefix, 'out', OUTSIDE_IP, lab.mtu);
  await callAgent(h1!, 'NetworkCreate', { name: 'perf', subnet: '', vni: 0, internal: false });
  type Sandbox = { netns: string; endpoints: Array<{ ip: string }> };
  const backend = await callAgent<Sandbox>(h1!, 'SandboxCreate', { networks: ['perf'], name: 'web', aliases: [], netns: '', command: [process.execPath, '-e', SERVER], publish: ['8080:80'] });
  const client = await callAgent<Sandbox>(h2!, 'SandboxCreate', { networks: ['perf'], name: 'client', aliases: [], netns: '', command: [] });
  const urls = { published: `http://${h1!.ip}:8080/`, direct: `http://${backend.endpoints[0]!.ip}/` };
  await eventually('the published port to answer', () => curlOk(outside, urls.published), 30_000);
  await eventually('the overlay address to answer', () => curlOk(client.netns, urls.direct), 30_000);
  for (let round = 0; round < ROUNDS; round++) {
    published.push(await wrk(outside, urls.published));
    direct.push(await wrk(client.netns, urls.direct));
  }
} finally {
  await labDown(prefix);
}

const summary = (xs: Sample[]) => ({ rps: median(xs.map((x) => x.rps)), p99Ms: median(xs.map((x) => x.p99Ms)) });
const a = summary(published);
const d = summary(direct);
const ratio = a.rps / d.rps;
console.log(`published ports, wrk -t1 -c${CONNECTIONS} ${SECONDS} s x ${ROUNDS} rounds (median)      requests/s   p99 ms`);
console.log(`(a) outside client -> host-published port (DNAT)     ${a.rps.toFixed(0).padStart(10)}   ${a.p99Ms.toFixed(2).padStart(6)}`);
console.log(`(d) sandbox on another host -> overlay address       ${d.rps.toFixed(0).padStart(10)}   ${d.p99Ms.toFixed(2).padStart(6)}`);
console.log(`(a)/(d)                                              ${ratio.toFixed(2).padStart(10)}   (goal >= 0.9)`);
console.log('(b), (c): the ingress routing mesh is not built, so not measured');
mkdirSync('bench/results', { recursive: true });
writeFileSync('bench/results/ingress.json', JSON.stringify({
  rounds: ROUNDS, seconds: SECONDS, connections: CONNECTIONS, published, direct, medianPublished: a, medianDirect: d, ratio,
  ingressMesh: 'not built', date: new Date().toISOString(),
}, null, 2) + '\n');
