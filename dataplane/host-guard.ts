// The host guard: nftables rules in the agent's namespace that keep the
// cluster's own traffic to its members and keep sandboxes to their own
// addresses (docs/security/host-guard.md).
//   table ip weft_guard      VXLAN only from member VTEPs; sandboxes never reach
//                            a member's cluster ports; nothing is forwarded into
//                            the egress bridge but replies and what this host
//                            DNATs there (published ports).
//   table bridge weft_guard  every sandbox's port on the egress bridge carries
//                            only its own MAC and IPv4 address (IPv4 and ARP).
// The agent decides the members and the pins; this module renders and applies.
// A member change rewrites only the member sets, a sandbox change only the
// pins: each one `nft -f` transaction, atomic, idempotent.
import type { DataplaneContext } from './context.ts';
import { EGRESS_BRIDGE, EGRESS_PORT_GROUP } from './egress.ts';
import { DEFAULT_DSTPORT } from './names.ts';
import { normalizeMac } from './mac.ts';
import { parseIPv4 } from '../lib/ipv4.ts';
import { compareGuard, desiredGuardBridge, desiredGuardIp, parseGuardListing, type GuardTableState } from './host-guard-inspect.ts';
import type { GuardMembers, GuardPin, HostGuardState } from './host-guard-state.ts';

export const GUARD_TABLE = 'weft_guard';

export type { ClusterPort, GuardMembers, GuardPin, HostGuardState } from './host-guard-state.ts';

const IFNAME = /^[A-Za-z0-9_.-]{1,15}$/;

function sortedUnique(values: readonly string[]): string[] {
  return [...new Set(values)].sort();
}

function vtepElements(members: GuardMembers): string[] {
  for (const ip of members.vteps) parseIPv4(ip);
  return sortedUnique(members.vteps);
}

function portElements(members: GuardMembers): string[] {
  return sortedUnique(members.clusterPorts.map((p) => {
    parseIPv4(p.address);
    if (!Number.isInteger(p.port) || p.port < 1 || p.port > 65535) throw new Error(`cluster port ${p.port} of ${p.address} is not a port number`);
    if (p.protocol !== 'tcp' && p.protocol !== 'udp') throw new Error(`cluster port protocol "${String(p.protocol)}" must be tcp or udp`);
    return `${p.address} . ${p.protocol} . ${p.port}`;
  }));
}

function pinElements(pins: readonly GuardPin[]): string[] {
  return sortedUnique(pins.map((pin) => {
    if (!IFNAME.test(pin.port)) throw new Error(`"${pin.port}" is not an interface name`);
    parseIPv4(pin.ip);
    return `"${pin.port}" . ${normalizeMac(pin.mac)} . ${pin.ip}`;
  }));
}

/** A named set inside a table; an empty one gets no elements line (nft refuses an empty list). */
function setBlock(name: string, type: string, elements: readonly string[]): string[] {
  return [`  set ${name} {`, `    type ${type};`, ...(elements.length > 0 ? [`    elements = { ${elements.join(', ')} }`] : []), `  }`];
}

/** The ip table (pure, for tests). */
export function renderGuardIpTable(members: GuardMembers, gateway: string): string[] {
  const bridge = EGRESS_BRIDGE;
  parseIPv4(gateway);
  return [
    `table ip ${GUARD_TABLE} {`,
    ...setBlock('vteps', 'ipv4_addr', vtepElements(members)),
    ...setBlock('cluster_ports', 'ipv4_addr . inet_proto . inet_service', portElements(members)),
    // Before the egress table's chains (priority filter): a drop here is final whatever they say.
    `  chain input {`,
    `    type filter hook input priority filter - 10; policy accept;`,
    `    udp dport ${DEFAULT_DSTPORT} ip saddr != @vteps drop`,
    `    iifname "${bridge}" ip daddr . meta l4proto . th dport @cluster_ports drop`,
    // Routed here from the underlay, the gateway address would reach the resolver: only sandboxes and this host may.
    `    ip daddr ${gateway} iifname != { "${bridge}", "lo" } drop`,
    `  }`,
    `  chain forward {`,
    `    type filter hook forward priority filter - 10; policy accept;`,
    // The attack this stops: a sandbox's packet masqueraded to this host's (member) address.
    `    iifname "${bridge}" ip daddr . meta l4proto . th dport @cluster_ports drop`,
    `    oifname "${bridge}" ct state established,related accept`,
    `    oifname "${bridge}" jump published`,
    `    oifname "${bridge}" drop`,
    `  }`,
    // Port publishing (dataplane/publish.ts) DNATs a host port to a sandbox: only
    // flows this host's own NAT rules sent in get past, never one addressed to a sandbox.
    `  chain published {`,
    `    ct status dnat accept`,
    `  }`,
    `}`,
  ];
}

/** The bridge table (pure, for tests). */
export function renderGuardBridgeTable(pins: readonly GuardPin[]): string[] {
  return [
    `table bridge ${GUARD_TABLE} {`,
    ...setBlock('pins', 'ifname . ether_addr . ipv4_addr', pinElements(pins)),
    `  chain prerouting {`,
    `    type filter hook prerouting priority filter; policy accept;`,
    `    meta iifgroup != ${EGRESS_PORT_GROUP} accept`,
    `    ether type ip iifname . ether saddr . ip saddr @pins accept`,
    // ARP: the frame's source and the sender hardware address must both be the port's own, with its own address.
    `    ether type arp iifname . ether saddr . arp saddr ip @pins iifname . arp saddr ether . arp saddr ip @pins accept`,
    // Anything else from a sandbox port (another address, IPv6, VLAN tags) goes nowhere.
    `    drop`,
    `  }`,

    `}`,
  ];
}

/** Both tables, each replaced in the same transaction (delete-then-add of a table that may not exist). */
export function renderHostGuard(state: HostGuardState): string {
  return [
    `table ip ${GUARD_TABLE}`, `delete table ip ${GUARD_TABLE}`, ...renderGuardIpTable(state, state.gateway),
    `table bridge ${GUARD_TABLE}`, `delete table bridge ${GUARD_TABLE}`, ...renderGuardBridgeTable(state.pins),
  ].join('\n') + '\n';
}

function replaceSet(family: string, set: string, elements: readonly string[]): string[] {
  return [`flush set ${family} ${GUARD_TABLE} ${set}`, ...(elements.length > 0 ? [`add element ${family} ${GUARD_TABLE} ${set} { ${elements.join(', ')} }`] : [])];
}

/** Only the member sets, in one transaction (pure, for tests). */
export function renderMembersUpdate(members: GuardMembers): string {
  return [...replaceSet('ip', 'vteps', vtepElements(members)), ...replaceSet('ip', 'cluster_ports', portElements(members))].join('\n') + '\n';
}

/** Only the pins, in one transaction (pure, for tests). */
export function renderPinsUpdate(pins: readonly GuardPin[]): string {
  return replaceSet('bridge', 'pins', pinElements(pins)).join('\n') + '\n';
}

async function nft(ctx: DataplaneContext, script: string, what: string): Promise<void> {
  if (ctx.nftScript) {
    try {
      await ctx.nftScript(script);
      return;
    } catch {
      // The worker may be what failed (it cannot start, it died): the guard must not depend
      // on it. The same script through an nft process says whether the script is at fault.
    }
  }
  const result = await ctx.runner('nft', ['-f', '-'], script);
  if (result.exitCode !== 0) throw new Error(`nft -f (${what}) failed: ${result.stderr.trim()}`);
}

/** Writes both tables whole: at start-up and whenever a check finds them different. */
export async function applyHostGuard(ctx: DataplaneContext, state: HostGuardState): Promise<void> {
  await nft(ctx, renderHostGuard(state), 'host guard');
}

/** Replaces the member sets; writes everything when the table is missing (the flush then fails). */
export async function updateGuardMembers(ctx: DataplaneContext, state: HostGuardState): Promise<void> {
  try {
    await nft(ctx, renderMembersUpdate(state), 'host guard members');
  } catch {
    await applyHostGuard(ctx, state);
  }
}

/** Replaces the pins; writes everything when the table is missing. */
export async function updateGuardPins(ctx: DataplaneContext, state: HostGuardState): Promise<void> {
  try {
    await nft(ctx, renderPinsUpdate(state.pins), 'host guard pins');
  } catch {
    await applyHostGuard(ctx, state);
  }
}

async function listTable(ctx: DataplaneContext, family: 'ip' | 'bridge'): Promise<GuardTableState | undefined> {
  const result = await ctx.runner('nft', ['-j', 'list', 'table', family, GUARD_TABLE]);
  if (result.exitCode !== 0) {
    if (/No such file or directory/.test(result.stderr)) return undefined;
    throw new Error(`nft list table ${family} ${GUARD_TABLE} failed: ${result.stderr.trim()}`);
  }
  return parseGuardListing(result.stdout);
}

/** Each difference between the kernel's guard tables and `state`, as a sentence; empty when they match. */
export async function inspectHostGuard(ctx: DataplaneContext, state: HostGuardState): Promise<string[]> {
  const [ip, bridge] = await Promise.all([listTable(ctx, 'ip'), listTable(ctx, 'bridge')]);
  return [
    ...compareGuard(`ip ${GUARD_TABLE}`, desiredGuardIp(state), ip),
    ...compareGuard(`bridge ${GUARD_TABLE}`, desiredGuardBridge(state.pins), bridge),
  ];
}
