// What a lab host shows of one overlay network, read from the kernel and the
// resolver, for every check that holds it against the truth: the churn soak
// (test/helpers/soak.ts, truth from its own record of what it made), the
// partition heal scenario and the CPU-starvation benchmark (truth: the
// healthy cluster's own view, which must come back exactly after a failure).
// Two reads, one process per namespace each, so a poll stays cheap:
//   - the network's namespace: remote FDB and neighbour entries on vxlan0;
//   - a sandbox on the network: names resolved through the embedded resolver,
//     and the chains of its load-balancing table.
import { execa } from 'execa';
import type { LabHost } from '../../deploy/lab/lab.ts';

// By absolute path: run from npm or ava, PATH starts with node_modules/.bin,
// whose `nft` is Node File Trace (an ava dependency). It lists no table, so
// every LB table read empty and no lab ever matched its truth.
const NFT = '/usr/sbin/nft';
const SEPARATOR = '=====';
const IPV4 = /\b\d{1,3}(?:\.\d{1,3}){3}\b/g;
export const FLOOD_MAC = '00:00:00:00:00:00';

export interface FdbEntry { mac: string; dst: string }
export interface Neighbour { ip: string; mac: string; state: string }

/** vxlan0's FDB entries that point at a remote VTEP (the flood entries included), and its neighbours. */
export interface NetworkState { fdb: FdbEntry[]; neighbours: Neighbour[] }

export interface SandboxState {
  /** Per name asked (lower case, with the trailing dot dig prints), the A records answered. */
  answers: Map<string, string[]>;
  /** Per chain of `ip weft_lb` (svc_<service>, and output with the VIPs), the IPv4 addresses in it; empty without a table. */
  lbChains: Map<string, string[]>;
}

export interface DigOptions { timeS: number; tries: number }

async function inNetns(netns: string, script: string, args: readonly string[] = []): Promise<string> {
  // Arguments go in as positional parameters, never into the script text.
  const r = await execa('ip', ['netns', 'exec', netns, 'sh', '-c', script, 'sh', ...args], { reject: false, timeout: 20_000 });
  return String(r.stdout);
}

export async function readNetworkState(networkNs: string): Promise<NetworkState> {
  const out = await inNetns(networkNs, `bridge -j fdb show dev vxlan0; echo ${SEPARATOR}; ip -4 -j neigh show dev vxlan0`);
  const [fdb = '', neighbours = ''] = out.split(SEPARATOR);
  const fdbEntries = JSON.parse(fdb) as Array<{ mac: string; dst?: string }>;
  const neighbourEntries = JSON.parse(neighbours) as Array<{ dst: string; lladdr?: string; state?: string[] }>;
  return {
    fdb: fdbEntries.flatMap((e) => (e.dst === undefined ? [] : [{ mac: e.mac, dst: e.dst }])),
    neighbours: neighbourEntries.map((n) => ({ ip: n.dst, mac: n.lladdr ?? '', state: (n.state ?? []).join(',') })),
  };
}

/** Resolves `names` (A records, one dig process for all) and lists the LB table, in one process. */
export async function readSandboxState(sandboxNs: string, names: readonly string[], dig: DigOptions): Promise<SandboxState> {
  const query = names.length > 0 ? `dig +noall +answer +time=${dig.timeS} +tries=${dig.tries} "$@"` : 'true';
  const out = await inNetns(sandboxNs, `${query}; echo ${SEPARATOR}; ${NFT} list table ip weft_lb 2>/dev/null`, names.flatMap((n) => [n, 'A']));
  const [dns = '', lb = ''] = out.split(SEPARATOR);
  const answers = new Map<string, string[]>();
  for (const line of dns.split('\n')) {
    const [owner, , , type, data] = line.trim().split(/\s+/);
    if (owner && type === 'A' && data) answers.set(owner.toLowerCase(), [...(answers.get(owner.toLowerCase()) ?? []), data]);
  }
  const lbChains = new Map<string, string[]>();
  for (const block of lb.split(/\n\s*chain /).slice(1)) lbChains.set(block.split(/\s/)[0] ?? '', block.match(IPV4) ?? []);
  return { answers, lbChains };
}

export const sameSet = (a: readonly string[], b: readonly string[]): boolean => a.length === b.length && [...a].sort().join() === [...b].sort().join();

/** What `got` lacks and has beyond `want`, for a violation's text. */
export function setDiff(got: readonly string[], want: readonly string[]): string {
  const missing = want.filter((w) => !got.includes(w));
  const extra = got.filter((g) => !want.includes(g));
  return `missing [${missing.join(', ')}] extra [${extra.join(', ')}]`;
}

// ---- one service's view, compared whole with a healthy cluster's ----

/** One host's view of a service, every part sorted: equal views are equal JSON. */
export interface HostView {
  fdb: string[];
  neighbours: string[];
  dns: string[];
  lb: string[];
}

export interface ViewTarget {
  host: LabHost;
  /** The network's namespace on that host (`<host netns>-n<vni>`). */
  networkNs: string;
  /** A sandbox on the network, to ask the resolver and read the LB table from. */
  sandboxNs: string;
}

const sorted = (items: Iterable<string>): string[] => [...new Set(items)].sort();

/** `tasks.<service>` as the sandbox resolves it, and every address in its LB table; a part that cannot be read shows as such. */
export async function readHostView(target: ViewTarget, service: string): Promise<HostView> {
  const name = `tasks.${service}.`;
  const [network, sandbox] = await Promise.all([
    readNetworkState(target.networkNs).catch((error: Error) => error),
    readSandboxState(target.sandboxNs, [name], { timeS: 1, tries: 1 }),
  ]);
  const unreadable = network instanceof Error ? [`unreadable: ${network.message.split('\n')[0]}`] : undefined;
  return {
    fdb: unreadable ?? sorted((network as NetworkState).fdb.map((e) => `${e.mac} dst ${e.dst}`)),
    neighbours: unreadable ?? sorted((network as NetworkState).neighbours.map((n) => `${n.ip} lladdr ${n.mac} ${n.state}`)),
    dns: sorted(sandbox.answers.get(name) ?? []),
    lb: sorted([...sandbox.lbChains.values()].flat()),
  };
}

export function sameView(a: HostView, b: HostView): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** Which parts of `actual` differ from `expected` (empty: identical). */
export function viewDifferences(expected: HostView, actual: HostView): string[] {
  return (Object.keys(expected) as Array<keyof HostView>).filter((k) => JSON.stringify(expected[k]) !== JSON.stringify(actual[k]));
}

export async function readViews(targets: readonly ViewTarget[], service: string): Promise<HostView[]> {
  return Promise.all(targets.map((t) => readHostView(t, service)));
}
