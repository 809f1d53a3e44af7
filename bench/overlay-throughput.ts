// Overlay throughput: iperf3 (one TCP stream, 5 s) from a sandbox on one lab
// host to a sandbox on another, through weft's data plane, against a
// hand-built veth–bridge–VXLAN path between two namespaces with static
// entries, alternating in one run so machine noise hits both alike.
// Prints a table and writes bench/results/overlay-throughput.json.
// Usage: node bench/overlay-throughput.ts [rounds]
import { execa } from 'execa';
import { writeFileSync, mkdirSync } from 'node:fs';
import { labUp, labDown, callAgent } from '../deploy/lab/lab.ts';
import { removeNamespacesWithPrefix } from '../dataplane/testing/underlay.ts';
import { uniquePrefix } from '../test/helpers/weft-cli.ts';

const ROUNDS = Number(process.argv[2] ?? 3);
const SECONDS = 5;
const prefix = uniquePrefix('p');
const hand = `${prefix}x`;

const sh = async (args: string[]): Promise<string> => String((await execa(args[0]!, args.slice(1))).stdout);
const inNs = (ns: string, ...args: string[]): Promise<string> => sh(['ip', 'netns', 'exec', ns, ...args]);

/** Two "hosts" joined by a veth underlay, each with bridge + VXLAN (static FDB) and a client namespace. */
async function buildHandPath(): Promise<{ client: string; server: string; serverIp: string }> {
  const side = (k: 'a' | 'b') => ({ host: `${hand}-h${k}`, sb: `${hand}-s${k}`, under: k === 'a' ? '198.18.200.1' : '198.18.200.2', ip: k === 'a' ? '100.127.200.1' : '100.127.200.2', mac: k === 'a' ? '02:42:64:7f:c8:01' : '02:42:64:7f:c8:02' });
  const a = side('a');
  const b = side('b');
  for (const ns of [a.host, b.host, a.sb, b.sb]) await sh(['ip', 'netns', 'add', ns]);
  await sh(['ip', '-n', a.host, 'link', 'add', 'u0', 'type', 'veth', 'peer', 'name', 'u0', 'netns', b.host]);
  for (const [s, peer] of [[a, b], [b, a]] as const) {
    const ip = (...args: string[]) => sh(['ip', '-n', s.host, ...args]);
    await ip('addr', 'add', `${s.under}/24`, 'dev', 'u0');
    await ip('link', 'set', 'u0', 'up');
    await ip('link', 'set', 'lo', 'up');
    await ip('link', 'add', 'br0', 'mtu', '1450', 'type', 'bridge');
    await ip('link', 'add', 'vx0', 'mtu', '1450', 'type', 'vxlan', 'id', '4242', 'local', s.under, 'dstport', '4789', 'nolearning');
    await ip('link', 'set', 'vx0', 'master', 'br0', 'up');
    await ip('link', 'set', 'br0', 'up');
    await ip('link', 'add', 'v0', 'mtu', '1450', 'type', 'veth', 'peer', 'name', 'eth0', 'mtu', '1450', 'address', s.mac, 'netns', s.sb);
    await ip('link', 'set', 'v0', 'master', 'br0', 'up');
    await sh(['bridge', '-n', s.host, 'fdb', 'append', peer.mac, 'dev', 'vx0', 'dst', peer.under, 'permanent']);
    await sh(['ip', '-n', s.sb, 'addr', 'add', `${s.ip}/24`, 'dev', 'eth0']);
    await sh(['ip', '-n', s.sb, 'link', 'set', 'eth0', 'up']);
    await sh(['ip', '-n', s.sb, 'link', 'set', 'lo', 'up']);
    await sh(['ip', '-n', s.sb, 'neigh', 'replace', peer.ip, 'lladdr', peer.mac, 'dev', 'eth0', 'nud', 'permanent']);
  }
  return { client: a.sb, server: b.sb, serverIp: b.ip };
}

async function iperf(client: string, server: string, serverIp: string): Promise<number> {
  const daemon = execa('ip', ['netns', 'exec', server, 'iperf3', '-s', '-1'], { reject: false });
  await new Promise((resolve) => setTimeout(resolve, 500));
  const out = await inNs(client, 'iperf3', '-c', serverIp, '-t', String(SECONDS), '-J');
  await daemon;
  const report = JSON.parse(out) as { end: { sum_received: { bits_per_second: number } } };
  return report.end.sum_received.bits_per_second / 1e9;
}

const median = (xs: number[]): number => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)] ?? NaN;
const weft: number[] = [];
const handBuilt: number[] = [];
try {
  const lab = await labUp({ hosts: 2, prefix });
  const [h1, h2] = lab.hosts;
  await callAgent(h1!, 'NetworkCreate', { name: 'perf', subnet: '', vni: 0, internal: true });
  type Sandbox = { netns: string; endpoints: Array<{ ip: string }> };
  const a = await callAgent<Sandbox>(h1!, 'SandboxCreate', { networks: ['perf'], name: 'a', aliases: [], netns: '', command: [] });
  const b = await callAgent<Sandbox>(h2!, 'SandboxCreate', { networks: ['perf'], name: 'b', aliases: [], netns: '', command: [] });
  await new Promise((resolve) => setTimeout(resolve, 2_000));
  const handPath = await buildHandPath();
  for (let round = 0; round < ROUNDS; round++) {
    weft.push(await iperf(a.netns, b.netns, b.endpoints[0]!.ip));
    handBuilt.push(await iperf(handPath.client, handPath.server, handPath.serverIp));
  }
} finally {
  await labDown(prefix);
  await removeNamespacesWithPrefix(hand);
}

const ratio = median(weft) / median(handBuilt);
console.log(`overlay throughput, iperf3 1 TCP stream, ${SECONDS} s x ${ROUNDS} rounds (Gbit/s, median)`);
console.log(`weft sandbox -> sandbox across 2 lab hosts   ${median(weft).toFixed(2)}`);
console.log(`hand-built veth-bridge-VXLAN path            ${median(handBuilt).toFixed(2)}`);
console.log(`ratio                                        ${ratio.toFixed(2)}  (goal >= 0.95)`);
mkdirSync('bench/results', { recursive: true });
writeFileSync('bench/results/overlay-throughput.json', JSON.stringify({ rounds: ROUNDS, seconds: SECONDS, weftGbps: weft, handBuiltGbps: handBuilt, medianWeft: median(weft), medianHandBuilt: median(handBuilt), ratio, date: new Date().toISOString() }, null, 2) + '\n');
