// What every host of a lab shows of one overlay network, read from the kernel
// and the resolver: remote FDB and neighbour entries on the network's VXLAN
// device, the addresses `tasks.<service>` resolves to from a sandbox, and the
// addresses in that sandbox's load-balancing table. A healthy cluster's view
// is the truth; after a failure heals, every host must show it again exactly.
import { execa } from 'execa';
import type { LabHost } from '../../deploy/lab/lab.ts';

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

const SEPARATOR = '=====';
// By absolute path: run from npm or ava, PATH starts with node_modules/.bin,
// whose `nft` is Node File Trace (an ava dependency). It lists no table, so
// every LB table read empty and no lab ever matched its truth.
const NFT = '/usr/sbin/nft';
const IPV4 = /\b\d{1,3}(?:\.\d{1,3}){3}\b/g;

async function inNetns(netns: string, script: string): Promise<string> {
  const r = await execa('ip', ['netns', 'exec', netns, 'sh', '-c', script], { reject: false, timeout: 20_000 });
  return String(r.stdout);
}

const sortedLines = (text: string): string[] => text.split('\n').map((l) => l.trim()).filter((l) => l !== '').sort();

/** One host's view: two processes, one per namespace, so a poll stays cheap. */
export async function readHostView(target: ViewTarget, service: string): Promise<HostView> {
  const [network, sandbox] = await Promise.all([
    inNetns(target.networkNs, `bridge fdb show dev vxlan0 | grep ' dst '; echo ${SEPARATOR}; ip -4 neigh show dev vxlan0`),
    inNetns(target.sandboxNs, `dig +short +time=1 +tries=1 tasks.${service}; echo ${SEPARATOR}; ${NFT} list table ip weft_lb 2>/dev/null`),
  ]);
  const [fdb = '', neighbours = ''] = network.split(SEPARATOR);
  const [dns = '', lb = ''] = sandbox.split(SEPARATOR);
  return {
    fdb: sortedLines(fdb),
    neighbours: sortedLines(neighbours),
    dns: sortedLines(dns).filter((l) => !l.startsWith(';')),
    lb: [...new Set(lb.match(IPV4) ?? [])].sort(),
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
