// The nftables table that load-balances service VIPs inside one sandbox
// (kube-proxy's nftables mode, per sandbox): in the nat output hook, a verdict
// map on (VIP, protocol, port) jumps to the service's chain, which DNATs to one
// live backend chosen by `numgen random mod N`. DNAT happens on a connection's
// first packet only; conntrack keeps every later packet on the same backend, so
// replacing the table never moves an established connection. A service with no
// live backend rejects at once (TCP reset, ICMP unreachable) instead of letting
// clients time out on a VIP nobody answers.
import { isIPv4 } from 'node:net';
import { SERVICE_NAME } from '../../lib/names.ts';

export const LB_TABLE = 'weft_lb';
/** Above this, a map's elements would overflow one netlink attribute (64 KiB): nft splits them, we leave it to nft. */
const MAX_NETLINK_BACKENDS = 1024;

export interface LbPort {
  port: number;
  protocol: 'tcp' | 'udp';
}

export interface LbService {
  name: string;
  vip: string;
  ports: readonly LbPort[];
  /** Backend IPs; order does not matter (rendered sorted). */
  backends: readonly string[];
}

/** A sandbox's table in parts, so an update can replace only the service chains that changed. */
export interface RenderedLb {
  /** The output chain with its verdict map: changes only when services, VIPs or ports do. */
  dispatch: string;
  /** Per service chain name, the one rule it holds. */
  chains: Map<string, string>;
  /** Per service chain name, its backends (sorted, unique). */
  backends: Map<string, readonly string[]>;
}

export class LbSpecError extends Error {
  override name = 'LbSpecError';
}

export function chainName(service: string): string {
  return `svc_${service}`;
}

/** Refuses bad desired state before anything reaches the kernel. */
export function validateServices(services: readonly LbService[]): void {
  const names = new Set<string>();
  const keys = new Set<string>();
  for (const s of services) {
    if (!SERVICE_NAME.test(s.name)) throw new LbSpecError(`service name "${s.name}" is not a DNS label`);
    if (names.has(s.name)) throw new LbSpecError(`service "${s.name}" is given twice`);
    names.add(s.name);
    if (!isIPv4(s.vip)) throw new LbSpecError(`service "${s.name}": VIP "${s.vip}" is not an IPv4 address`);
    for (const b of s.backends) if (!isIPv4(b)) throw new LbSpecError(`service "${s.name}": backend "${b}" is not an IPv4 address`);
    for (const p of s.ports) {
      if (!Number.isInteger(p.port) || p.port < 1 || p.port > 65_535) throw new LbSpecError(`service "${s.name}": port ${p.port} is not 1-65535`);
      if (p.protocol !== 'tcp' && p.protocol !== 'udp') throw new LbSpecError(`service "${s.name}": protocol "${String(p.protocol)}" is not tcp or udp`);
      const key = `${s.vip} . ${p.protocol} . ${p.port}`;
      if (keys.has(key)) throw new LbSpecError(`${s.vip}:${p.port}/${p.protocol} belongs to two services`);
      keys.add(key);
    }
  }
}

export function renderLb(services: readonly LbService[]): RenderedLb {
  validateServices(services);
  const sorted = [...services].sort((a, b) => a.name.localeCompare(b.name));
  const elements = sorted.flatMap((s) =>
    [...s.ports].sort((a, b) => a.port - b.port || a.protocol.localeCompare(b.protocol)).map((p) => `${s.vip} . ${p.protocol} . ${p.port} : jump ${chainName(s.name)}`),
  );
  const dispatch = [
    `  chain output {`,
    `    type nat hook output priority -100; policy accept;`,
    // `ct state new` keeps conntrack on in the namespace: nat chains only see tracked packets, and the
    // kernel tracks only while some expression needs it. dnat does, reject does not: without this, a
    // table whose services all lost their backends would let connections to the VIPs leave unchanged.
    ...(elements.length > 0 ? [`    ct state new ip daddr . meta l4proto . th dport vmap { ${elements.join(', ')} }`] : []),
    `  }`,
  ].join('\n');
  const balanced = sorted.filter((s) => s.ports.length > 0);
  const backends = new Map(balanced.map((s) => [chainName(s.name), [...new Set(s.backends)].sort()]));
  const chains = new Map([...backends].map(([name, ips]) => [name, serviceRule(ips)]));
  return { dispatch, chains, backends };
}

function serviceRule(sorted: readonly string[]): string {
  if (sorted.length === 0) return 'meta l4proto tcp reject with tcp reset\n    reject';
  if (sorted.length === 1) return `dnat to ${sorted[0]}`;
  return `dnat to numgen random mod ${sorted.length} map { ${sorted.map((ip, i) => `${i} : ${ip}`).join(', ')} }`;
}

/** The whole table, replaced in one transaction (delete-then-add: `nft -f` would otherwise merge). */
export function fullScript(rendered: RenderedLb): string {
  const chains = [...rendered.chains].map(([name, rule]) => `  chain ${name} {\n    ${rule}\n  }`);
  return [`table ip ${LB_TABLE}`, `delete table ip ${LB_TABLE}`, `table ip ${LB_TABLE} {`, rendered.dispatch, ...chains, `}`, ''].join('\n');
}

/**
 * Only the service chains whose rule changed, when the dispatch map and the set
 * of chains are the same as `before`; undefined when the whole table must go.
 * One transaction either way.
 */
export function incrementalScript(before: RenderedLb, after: RenderedLb): string | undefined {
  if (before.dispatch !== after.dispatch || before.chains.size !== after.chains.size) return undefined;
  const lines: string[] = [];
  for (const [name, rule] of after.chains) {
    const old = before.chains.get(name);
    if (old === undefined) return undefined;
    if (old === rule) continue;
    lines.push(`flush chain ip ${LB_TABLE} ${name}`);
    for (const statement of rule.split('\n')) lines.push(`add rule ip ${LB_TABLE} ${name} ${statement.trim()}`);
  }
  return lines.length === 0 ? '' : lines.join('\n') + '\n';
}

/**
 * The service chains whose backends changed, as [chain, backends], when that
 * is all that changed and each still has a backend: the worker writes these
 * as netlink messages (nft_netlink.py) instead of through nft. Undefined when
 * the change needs nft (anything else, or a chain going to the reject rule).
 */
export function backendChanges(before: RenderedLb, after: RenderedLb): [string, readonly string[]][] | undefined {
  if (before.dispatch !== after.dispatch || before.chains.size !== after.chains.size) return undefined;
  const changes: [string, readonly string[]][] = [];
  for (const [name, rule] of after.chains) {
    const old = before.chains.get(name);
    if (old === undefined) return undefined;
    if (old === rule) continue;
    const backends = after.backends.get(name)!;
    if (backends.length === 0 || backends.length > MAX_NETLINK_BACKENDS) return undefined;
    changes.push([name, backends]);
  }
  return changes;
}

export const removeScript = `table ip ${LB_TABLE}\ndelete table ip ${LB_TABLE}\n`;
