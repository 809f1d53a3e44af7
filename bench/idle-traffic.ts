// Idle control traffic on the wire: a quiet N-host weft lab, then N HashiCorp
// Serf agents (Debian's `serf`, memberlist's LAN profile) on the same kind of
// emulated underlay, each measured over the same window. Counts every byte a
// host sends into the lab switch (its port's rx counter: Ethernet, IP, TCP/UDP
// headers and payload), so protocol negotiation, ACKs and encryption overhead
// count too, unlike the simulator's payload figure.
// Prints a table, writes bench/results/idle-traffic.json.
// Usage: node bench/idle-traffic.ts [seconds] [hosts]   (needs `apt-get install serf`)
import { writeFileSync, mkdirSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { labUp, labDown } from '../deploy/lab/lab.ts';
import { addUnderlayHost, createUnderlaySwitch, ip, removeNamespacesWithPrefix, switchNamespace, underlayAddress } from '../dataplane/testing/underlay.ts';
import { uniquePrefix } from '../test/helpers/weft-cli.ts';

const SECONDS = Number(process.argv[2] ?? 60);
const HOSTS = Number(process.argv[3] ?? 5);
/** Time after the cluster forms before counting: joins, first syncs and mesh grafting are not idle. */
const SETTLE_MS = 15_000;

interface PortCounters { bytes: number; packets: number }
interface Figure { kbitPerNode: number; packetsPerNode: number; maxKbit: number }

async function sentBy(prefix: string, hosts: readonly string[]): Promise<Map<string, PortCounters>> {
  const out = await ip('-n', switchNamespace(prefix), '-s', '-j', 'link', 'show');
  const links = JSON.parse(out) as Array<{ ifname: string; stats64?: { rx: { bytes: number; packets: number } } }>;
  // The switch port's rx is what the host's eth0 sent.
  return new Map(links.filter((l) => hosts.includes(l.ifname)).map((l) => [l.ifname, { bytes: l.stats64?.rx.bytes ?? 0, packets: l.stats64?.rx.packets ?? 0 }]));
}

async function measure(prefix: string, hosts: readonly string[]): Promise<Figure> {
  const before = await sentBy(prefix, hosts);
  const start = performance.now();
  await sleep(SECONDS * 1000);
  const after = await sentBy(prefix, hosts);
  const seconds = (performance.now() - start) / 1000;
  const kbit = hosts.map((h) => ((after.get(h)!.bytes - before.get(h)!.bytes) * 8) / seconds / 1000);
  const packets = hosts.map((h) => (after.get(h)!.packets - before.get(h)!.packets) / seconds);
  const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
  return { kbitPerNode: mean(kbit), packetsPerNode: mean(packets), maxKbit: Math.max(...kbit) };
}

async function weftIdle(): Promise<Figure> {
  const prefix = uniquePrefix('i');
  try {
    const lab = await labUp({ hosts: HOSTS, prefix });
    await sleep(SETTLE_MS);
    return await measure(prefix, lab.hosts.map((h) => h.name));
  } finally {
    await labDown(prefix);
  }
}

const serfRpc = ['-rpc-addr=127.0.0.1:7373'];

async function serfIdle(): Promise<Figure> {
  const prefix = uniquePrefix('s');
  const names = Array.from({ length: HOSTS }, (_, i) => `h${i + 1}`);
  try {
    await createUnderlaySwitch(prefix, 1500);
    for (const [i, name] of names.entries()) {
      const address = underlayAddress(i);
      const netns = await addUnderlayHost(prefix, name, address, 1500);
      // Each agent lives in its host's namespace: removeNamespacesWithPrefix kills it with the namespace.
      execa('ip', ['netns', 'exec', netns, 'serf', 'agent', `-node=${name}`, `-bind=${address}:7946`, ...serfRpc, '-log-level=warn'], { reject: false, stdio: 'ignore' });
    }
    const inHost = (name: string, ...args: string[]) => execa('ip', ['netns', 'exec', `${prefix}-${name}`, 'serf', ...args, ...serfRpc], { reject: false });
    await until('serf agents to answer', async () => (await Promise.all(names.map((n) => inHost(n, 'members')))).every((r) => r.exitCode === 0));
    for (const name of names.slice(1)) await inHost(name, 'join', '198.18.0.1:7946');
    await until('serf members to see each other', async () =>
      (await Promise.all(names.map((n) => inHost(n, 'members', '-status=alive')))).every((r) => String(r.stdout).trim().split('\n').length === HOSTS));
    await sleep(SETTLE_MS);
    return await measure(prefix, names);
  } finally {
    await removeNamespacesWithPrefix(prefix);
  }
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return;
    await sleep(250);
  }
  throw new Error(`timed out waiting for ${what}`);
}

const weft = await weftIdle();
const serf = await serfIdle();

console.log(`idle control traffic on the wire, ${HOSTS} hosts, ${SECONDS} s after ${SETTLE_MS / 1000} s of settling (sent per host, all headers)`);
console.log(`${'agent'.padEnd(8)} ${'kbit/s per node'.padStart(16)} ${'max node'.padStart(9)} ${'packets/s per node'.padStart(19)}`);
for (const [name, f] of [['weft', weft], ['serf', serf]] as const) {
  console.log(`${name.padEnd(8)} ${f.kbitPerNode.toFixed(1).padStart(16)} ${f.maxKbit.toFixed(1).padStart(9)} ${f.packetsPerNode.toFixed(1).padStart(19)}`);
}
console.log(`weft / serf: ${(weft.kbitPerNode / serf.kbitPerNode).toFixed(1)}x`);
mkdirSync('bench/results', { recursive: true });
writeFileSync(`bench/results/idle-traffic-${HOSTS}.json`, JSON.stringify({
  hosts: HOSTS, seconds: SECONDS, settleMs: SETTLE_MS, weft, serf, ratio: weft.kbitPerNode / serf.kbitPerNode,
  goal: 'weft <= 10 kbit/s per node at 5 hosts (issue 16)',
  date: new Date().toISOString(),
}, null, 2) + '\n');
