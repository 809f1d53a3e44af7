// The ingress routing mesh inside a network's ingress sandbox (docs/publishing.md):
// the host's publish table DNATs a service's published port to this
// sandbox's gateway-bridge address, and this table sends each new flow on to
// one of the service's live backends on the overlay, chosen by `numgen random
// mod N` as the VIP load balancer does (dataplane/lb/ruleset.ts), then
// masquerades it to the sandbox's overlay address, so the backend's answer
// comes back through this sandbox (and the host that took the connection)
// wherever the backend runs. A publication with no live backend rejects at
// once. Conntrack keeps every later packet of a flow on its backend.
import { z } from 'zod';
import { isIPv4 } from 'node:net';
import type { DataplaneContext } from './context.ts';
import { EGRESS_IFNAME } from './egress.ts';
import { inNetns, netnsRef } from './netns.ts';

export const INGRESS_TABLE = 'weft_ingress';

/** One published port of a service, as the ingress sandbox balances it. */
export interface IngressEntry {
  published: number;
  protocol: 'tcp' | 'udp';
  target: number;
  /** Live backend addresses on the overlay (the VIP load balancer's set). */
  backends: readonly string[];
}

function checkPort(port: number, what: string): number {
  if (!Number.isInteger(port) || port < 1 || port > 65_535) throw new Error(`${what} ${port} is not a port number`);
  return port;
}

export function ingressChainName(entry: Pick<IngressEntry, 'protocol' | 'published'>): string {
  return `pub_${entry.protocol}_${entry.published}`;
}

function chainRule(entry: IngressEntry, backends: readonly string[]): string[] {
  const target = checkPort(entry.target, 'target port');
  if (backends.length === 0) return ['meta l4proto tcp reject with tcp reset', 'reject'];
  if (backends.length === 1) return [`meta l4proto ${entry.protocol} dnat ip to ${backends[0]}:${target}`];
  return [`meta l4proto ${entry.protocol} dnat ip to numgen random mod ${backends.length} map { ${backends.map((ip, i) => `${i} : ${ip} . ${target}`).join(', ')} }`];
}

function sortedBackends(entry: IngressEntry): string[] {
  for (const ip of entry.backends) if (!isIPv4(ip)) throw new Error(`backend "${ip}" is not an IPv4 address`);
  return [...new Set(entry.backends)].sort();
}

/** The table (pure, for tests); undefined when nothing is published on the network. */
export function renderIngressTable(entries: readonly IngressEntry[]): string[] | undefined {
  if (entries.length === 0) return undefined;
  const sorted = [...entries].sort((a, b) => a.published - b.published || a.protocol.localeCompare(b.protocol));
  const elements = sorted.map((e) => `${e.protocol} . ${checkPort(e.published, 'published port')} : jump ${ingressChainName(e)}`);
  return [
    `table ip ${INGRESS_TABLE} {`,
    `  chain prerouting {`,
    `    type nat hook prerouting priority dstnat; policy accept;`,
    // Only what the host's DNAT sent in on the gateway leg; `ct state new`: later packets follow conntrack.
    `    iifname "${EGRESS_IFNAME}" ct state new meta l4proto . th dport vmap { ${elements.join(', ')} }`,
    `  }`,
    ...sorted.flatMap((e) => [`  chain ${ingressChainName(e)} {`, ...chainRule(e, sortedBackends(e)).map((r) => `    ${r}`), `  }`]),
    // The answer must come back here to be un-NATed: the backend sees this sandbox's overlay address.
    `  chain postrouting {`,
    `    type nat hook postrouting priority srcnat; policy accept;`,
    `    oifname != "${EGRESS_IFNAME}" ct status dnat masquerade`,
    `  }`,
    `}`,
  ];
}

async function runInSandbox(ctx: DataplaneContext, netns: string, tool: string, args: string[], input?: string): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  const [file, argv] = inNetns(netnsRef(netns), tool, args);
  return ctx.runner(file, argv, input);
}

/** Replaces the sandbox's ingress table whole (or removes it) and lets the sandbox forward. */
export async function applyIngress(ctx: DataplaneContext, netns: string, entries: readonly IngressEntry[]): Promise<void> {
  const table = renderIngressTable(entries);
  // A new namespace does not forward; the ingress sandbox must (gateway leg in, overlay leg out).
  const sysctl = await runInSandbox(ctx, netns, 'sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
  if (sysctl.exitCode !== 0) throw new Error(`cannot turn on forwarding in ${netns}: ${sysctl.stderr.trim()}`);
  const script = [`table ip ${INGRESS_TABLE}`, `delete table ip ${INGRESS_TABLE}`, ...(table ?? [])].join('\n') + '\n';
  const result = await runInSandbox(ctx, netns, 'nft', ['-f', '-'], script);
  if (result.exitCode !== 0) throw new Error(`nft -f (ingress table in ${netns}) failed: ${result.stderr.trim()}`);
}

const listing = z.object({ nftables: z.array(z.record(z.string(), z.unknown())) });
const ruleSchema = z.object({ chain: z.string(), expr: z.array(z.unknown()) });

/** Each `address:port` a DNAT expression can send to, found anywhere in `value`. */
function dnatTargets(value: unknown, into: string[]): string[] {
  if (Array.isArray(value)) {
    value.forEach((v) => dnatTargets(v, into));
  } else if (value !== null && typeof value === 'object') {
    const o = value as Record<string, unknown>;
    if (Array.isArray(o['concat']) && o['concat'].length === 2) into.push(`${String(o['concat'][0])}:${String(o['concat'][1])}`);
    else if (typeof o['addr'] === 'string' && typeof o['port'] === 'number') into.push(`${o['addr']}:${o['port']}`);
    else Object.values(o).forEach((v) => dnatTargets(v, into));
  }
  return into;
}

/** Per chain, the sorted DNAT targets its rules hold (pure parser of `nft -j list table`, for tests). */
export function parseIngressListing(json: string): Map<string, string[]> {
  const chains = new Map<string, string[]>();
  for (const item of listing.parse(JSON.parse(json)).nftables) {
    if ('chain' in item) {
      const chain = z.object({ name: z.string() }).safeParse(item['chain']);
      if (chain.success && !chains.has(chain.data.name)) chains.set(chain.data.name, []);
    }
    if (!('rule' in item)) continue;
    const rule = ruleSchema.safeParse(item['rule']);
    if (!rule.success) continue;
    chains.set(rule.data.chain, [...(chains.get(rule.data.chain) ?? []), ...dnatTargets(rule.data.expr, [])].sort());
  }
  return chains;
}

/** Each difference between the sandbox's ingress table and `entries`, as a sentence; empty when they match. */
export async function inspectIngress(ctx: DataplaneContext, netns: string, entries: readonly IngressEntry[]): Promise<string[]> {
  const result = await runInSandbox(ctx, netns, 'nft', ['-j', 'list', 'table', 'ip', INGRESS_TABLE]);
  if (result.exitCode !== 0) {
    if (!/No such file or directory/.test(result.stderr)) throw new Error(`nft list table ip ${INGRESS_TABLE} in ${netns} failed: ${result.stderr.trim()}`);
    return entries.length === 0 ? [] : [`table ip ${INGRESS_TABLE} is missing from ${netns}: no published port of its network is balanced`];
  }
  if (entries.length === 0) return [`${netns} holds table ip ${INGRESS_TABLE} though its network publishes nothing`];
  const actual = parseIngressListing(result.stdout);
  const problems: string[] = [];
  for (const entry of entries) {
    const name = ingressChainName(entry);
    const want = sortedBackends(entry).map((ip) => `${ip}:${entry.target}`);
    const have = actual.get(name);
    if (have === undefined) problems.push(`chain ${name} (published port ${entry.published}/${entry.protocol}) is missing from ${netns}`);
    else if (have.join(',') !== want.join(',')) problems.push(`chain ${name} in ${netns} sends to [${have.join(', ')}] instead of the live backends [${want.join(', ')}]`);
  }
  const known = new Set(['prerouting', 'postrouting', ...entries.map(ingressChainName)]);
  for (const name of actual.keys()) if (!known.has(name)) problems.push(`chain ${name} in ${netns} balances a port no service publishes`);
  return problems;
}

/** The ingress calls, bound to one data plane context. */
export interface IngressPlane {
  apply(netns: string, entries: readonly IngressEntry[]): Promise<void>;
  inspect(netns: string, entries: readonly IngressEntry[]): Promise<string[]>;
}

export function ingressPlane(ctx: DataplaneContext): IngressPlane {
  return { apply: (netns, entries) => applyIngress(ctx, netns, entries), inspect: (netns, entries) => inspectIngress(ctx, netns, entries) };
}
