// Host port publishing (`weft run -p`): one nftables table in the host
// namespace that DNATs a host port to a sandbox's address on the gateway
// bridge (docs/publishing.md). Two maps hold the publications, so the rules
// never change and a sandbox change rewrites the table in one transaction:
//   prerouting  traffic from other machines and from sandboxes (hairpin)
//   output      the host itself, its own addresses and localhost
// Replies go back through conntrack, so an outside client's address reaches
// the sandbox unchanged. Two cases need a masquerade: localhost (the sandbox
// cannot answer 127.0.0.1) and hairpin (the bridge's ports are isolated, so the
// answer must come back through the host, not straight over the bridge).
import { z } from 'zod';
import type { DataplaneContext } from './context.ts';
import { EGRESS_BRIDGE } from './egress.ts';
import { LastWritten } from './last-written.ts';
import { formatIPv4, parseCidr, parseIPv4 } from '../lib/ipv4.ts';

export const PUBLISH_TABLE = 'weft_publish';

/** One published port as the kernel gets it. */
export interface PublishRule {
  /** '0.0.0.0': every local address of the host. */
  hostIp: string;
  hostPort: number;
  protocol: 'tcp' | 'udp';
  /** The sandbox's address on the gateway bridge. */
  targetIp: string;
  targetPort: number;
}

/** A socket a host process listens on (or, for UDP, is bound to). */
export interface HostListener {
  protocol: 'tcp' | 'udp';
  /** IPv4 address, or '0.0.0.0' for a wildcard (IPv6 wildcard sockets take IPv4 too). */
  address: string;
  port: number;
}

const ANY = '0.0.0.0';

function checkPort(port: number, what: string): number {
  if (!Number.isInteger(port) || port < 1 || port > 65_535) throw new Error(`${what} ${port} is not a port number`);
  return port;
}

function elementKey(rule: PublishRule): string {
  parseIPv4(rule.hostIp);
  const key = `${rule.protocol} . ${checkPort(rule.hostPort, 'host port')}`;
  return rule.hostIp === ANY ? key : `${rule.hostIp} . ${key}`;
}

function elementValue(rule: PublishRule): string {
  parseIPv4(rule.targetIp);
  return `${rule.targetIp} . ${checkPort(rule.targetPort, 'sandbox port')}`;
}

function mapBlock(name: string, type: string, elements: readonly string[]): string[] {
  return [`  map ${name} {`, `    type ${type} : ipv4_addr . inet_service;`, ...(elements.length > 0 ? [`    elements = { ${elements.join(', ')} }`] : []), `  }`];
}

function elements(rules: readonly PublishRule[], any: boolean): string[] {
  return [...new Set(rules.filter((r) => (r.hostIp === ANY) === any).map((r) => `${elementKey(r)} : ${elementValue(r)}`))].sort();
}

/**
 * The table (pure, for tests). `subnet` is the gateway bridge's: its first
 * address (the sandboxes' resolver) is never published, and a flow from a
 * sandbox is a hairpin. That is told by source address, not by interface: a
 * postrouting hook has no input interface.
 */
export function renderPublishTable(rules: readonly PublishRule[], subnet: string): string[] {
  const cidr = parseCidr(subnet);
  const gateway = formatIPv4(cidr.start + 1);
  const bridge = EGRESS_BRIDGE;
  return [
    `table ip ${PUBLISH_TABLE} {`,
    ...mapBlock('any_address', 'inet_proto . inet_service', elements(rules, true)),
    ...mapBlock('one_address', 'ipv4_addr . inet_proto . inet_service', elements(rules, false)),
    // route_localnet is on for the bridge (localhost DNAT needs it): nothing may come in from it to 127/8.
    `  chain guard {`,
    `    type filter hook prerouting priority raw; policy accept;`,
    `    iifname "${bridge}" ip daddr 127.0.0.0/8 drop`,
    `  }`,
    // The gateway address is the sandboxes' resolver, not a host address to publish on.
    `  chain prerouting {`,
    `    type nat hook prerouting priority dstnat; policy accept;`,
    `    fib daddr type local ip daddr != ${gateway} jump publish`,
    `  }`,
    `  chain output {`,
    `    type nat hook output priority -100; policy accept;`,
    `    fib daddr type local ip daddr != ${gateway} jump publish`,
    `  }`,
    `  chain publish {`,
    `    dnat ip to ip daddr . meta l4proto . th dport map @one_address`,
    `    dnat ip to meta l4proto . th dport map @any_address`,
    `  }`,
    `  chain postrouting {`,
    `    type nat hook postrouting priority srcnat; policy accept;`,
    `    oifname "${bridge}" ip saddr 127.0.0.0/8 masquerade`,
    `    oifname "${bridge}" ip saddr ${formatIPv4(cidr.start)}/${cidr.prefix} ct status dnat masquerade`,
    `  }`,
    `}`,
  ];
}

/** Replaces the table whole in one transaction and lets localhost DNAT leave through the bridge. */
export async function applyPublish(ctx: DataplaneContext, rules: readonly PublishRule[], subnet: string): Promise<void> {
  await writePublish(ctx, publishScript(rules, subnet));
}

function publishScript(rules: readonly PublishRule[], subnet: string): string {
  return [`table ip ${PUBLISH_TABLE}`, `delete table ip ${PUBLISH_TABLE}`, ...renderPublishTable(rules, subnet)].join('\n') + '\n';
}

async function writePublish(ctx: DataplaneContext, script: string): Promise<void> {
  const result = await ctx.runner('nft', ['-f', '-'], script);
  if (result.exitCode !== 0) throw new Error(`nft -f (publish table) failed: ${result.stderr.trim()}`);
  // A packet from 127.0.0.1 DNATed to a sandbox is otherwise dropped as a martian on its way out.
  const sysctl = await ctx.runner('sysctl', ['-qw', `net.ipv4.conf.${EGRESS_BRIDGE}.route_localnet=1`]);
  if (sysctl.exitCode !== 0) throw new Error(`cannot allow localhost DNAT on ${EGRESS_BRIDGE}: ${sysctl.stderr.trim()}`);
}

const listing = z.object({ nftables: z.array(z.record(z.string(), z.unknown())) });
const mapSchema = z.object({ name: z.string(), elem: z.array(z.unknown()).optional() });
const concat = z.object({ concat: z.array(z.union([z.string(), z.number()])) });
const pair = z.tuple([concat, concat]);

/** Map elements as `key : value` text, keyed by map name; undefined when the table is missing. */
export function parsePublishListing(json: string): Map<string, Set<string>> {
  const maps = new Map<string, Set<string>>();
  for (const item of listing.parse(JSON.parse(json)).nftables) {
    if (!('map' in item)) continue;
    const map = mapSchema.parse(item.map);
    maps.set(map.name, new Set((map.elem ?? []).map((element) => {
      const parsed = pair.safeParse(element);
      // Anything else (a range, a timeout) is not what weft writes: shown as is, it is a difference.
      return parsed.success ? `${parsed.data[0].concat.join(' . ')} : ${parsed.data[1].concat.join(' . ')}` : JSON.stringify(element);
    })));
  }
  return maps;
}

/** Each difference between the kernel's publish table and `rules`, as a sentence; empty when they match. */
export async function inspectPublish(ctx: DataplaneContext, rules: readonly PublishRule[]): Promise<string[]> {
  const result = await ctx.runner('nft', ['-j', 'list', 'table', 'ip', PUBLISH_TABLE]);
  if (result.exitCode !== 0) {
    if (/No such file or directory/.test(result.stderr)) return [`table ip ${PUBLISH_TABLE} is missing: no port is published`];
    throw new Error(`nft list table ip ${PUBLISH_TABLE} failed: ${result.stderr.trim()}`);
  }
  const actual = parsePublishListing(result.stdout);
  const problems: string[] = [];
  for (const [name, any] of [['any_address', true], ['one_address', false]] as const) {
    const want = new Set(elements(rules, any));
    const have = actual.get(name);
    if (!have) {
      problems.push(`map ${name} is missing from table ip ${PUBLISH_TABLE}`);
      continue;
    }
    for (const e of want) if (!have.has(e)) problems.push(`published port ${e} is missing from map ${name}`);
    for (const e of have) if (!want.has(e)) problems.push(`map ${name} holds ${e}, which no local sandbox publishes`);
  }
  return problems;
}

/** Local address column of `ss`: `0.0.0.0:22`, `127.0.0.53%lo:53`, `[::]:22`, `*:68`, `[::ffff:1.2.3.4]:80`. */
function listenerOf(protocol: 'tcp' | 'udp', local: string): HostListener | undefined {
  const cut = local.lastIndexOf(':');
  const port = Number(local.slice(cut + 1));
  const address = local.slice(0, cut).replace(/%[^\]]*$/, '').replace(/^\[(.*)\]$/, '$1');
  if (!Number.isInteger(port) || port < 1 || port > 65_535) return undefined;
  if (address === '*' || address === '::' || address === ANY) return { protocol, address: ANY, port };
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return { protocol, address: mapped[1]!, port };
  return /^\d+\.\d+\.\d+\.\d+$/.test(address) ? { protocol, address, port } : undefined; // IPv6-only: no IPv4 traffic
}

/** Parses `ss -Hlntu` (pure, for tests). */
export function parseListeners(output: string): HostListener[] {
  return output.split('\n').flatMap((line) => {
    const [netid, , , , local] = line.trim().split(/\s+/);
    if ((netid !== 'tcp' && netid !== 'udp') || local === undefined) return [];
    const listener = listenerOf(netid, local);
    return listener ? [listener] : [];
  });
}

/** Sockets host processes listen on, TCP and UDP, in the agent's namespace. */
export async function hostListeners(ctx: DataplaneContext): Promise<HostListener[]> {
  const result = await ctx.runner('ss', ['-Hlntu']);
  if (result.exitCode !== 0) throw new Error(`ss -Hlntu failed: ${result.stderr.trim()}`);
  return parseListeners(result.stdout);
}

const addressListing = z.array(z.object({ addr_info: z.array(z.object({ family: z.string().optional(), local: z.string() })).default([]) }));

/** The host's own IPv4 addresses (pure parser of `ip -j -4 addr show`, for tests). */
export function parseAddresses(json: string): string[] {
  return addressListing.parse(JSON.parse(json)).flatMap((link) => link.addr_info.filter((a) => a.family === undefined || a.family === 'inet').map((a) => a.local));
}

/** The host's own IPv4 addresses, in the agent's namespace: a publication on another address would never match. */
export async function hostAddresses(ctx: DataplaneContext): Promise<string[]> {
  const result = await ctx.runner('ip', ['-j', '-4', 'addr', 'show']);
  if (result.exitCode !== 0) throw new Error(`ip -j -4 addr show failed: ${result.stderr.trim()}`);
  return parseAddresses(result.stdout || '[]');
}

/** The publish table calls, bound to one data plane context. */
export interface PublishPlane {
  /** Replaces the table unless the last write put exactly this there (`force` writes anyway: start-up, repair). */
  apply(rules: readonly PublishRule[], subnet: string, force?: boolean): Promise<void>;
  inspect(rules: readonly PublishRule[]): Promise<string[]>;
  listeners(): Promise<HostListener[]>;
  addresses(): Promise<string[]>;
}

export function publishPlane(ctx: DataplaneContext): PublishPlane {
  const written = new LastWritten();
  return {
    apply: async (rules, subnet, force = false) => {
      const script = publishScript(rules, subnet);
      await written.write(script, force, () => writePublish(ctx, script));
    },
    inspect: (rules) => inspectPublish(ctx, rules),
    listeners: () => hostListeners(ctx),
    addresses: () => hostAddresses(ctx),
  };
}
