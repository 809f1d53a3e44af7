// The gateway link: every sandbox has a leg on a bridge in the host namespace
// (Docker's docker_gwbridge). Through it a sandbox reaches the embedded DNS
// resolver (the bridge address, port 53, redirected to the agent's socket),
// the agent reaches the sandbox for health checks, and sandboxes on a
// non-internal network reach the outside, masqueraded to the host's address
// (their default route). A sandbox only on internal networks has no default
// route here and its address is in `no_egress`: the host forwards nothing from
// it. Bridge ports are isolated, so sandboxes never talk to each other here
// (but for a hairpin to a published port: see setEgressPublishing).
import { createHash } from 'node:crypto';
import type { DataplaneContext } from './context.ts';
import { run, runBatch, tryBatches } from './exec.ts';
import { deleteLinkIfPresent, findLink, readLinks } from './links.ts';
import { inNetns, netnsArg, runJsonIn, type NetnsRef } from './netns.ts';
import type { Sandbox } from './sandbox.ts';
import { parseCidr, formatIPv4 } from '../lib/ipv4.ts';
import { macFromIp } from './mac.ts';
import { syncContainerRoutes, type ContainerRoute } from './container-routes.ts';
import { LastWritten } from './last-written.ts';

export const EGRESS_BRIDGE = 'weft_gw';
export const EGRESS_IFNAME = 'egress0';
const NFT_TABLE = 'weft_egress';
/**
 * Interface group of every sandbox's host-side port on the egress bridge. The
 * host guard's bridge table filters frames from ports in this group (this
 * kernel may lack a bridge-name match), so a port is guarded once it exists.
 */
export const EGRESS_PORT_GROUP = 0x77656674; // "weft"

export interface EgressSpec {
  /** Host-local subnet of the egress bridge, e.g. 172.31.255.0/24; the bridge takes its first address. */
  subnet: string;
  /** Destinations egress must never carry (the overlay address pool): another network is not "outside". */
  blocked: string[];
}

/** What the host's gateway table must hold besides the fixed rules. */
export interface EgressState {
  /** Gateway addresses of sandboxes only on internal networks: nothing is forwarded for them. */
  noEgress: readonly string[];
  /** The embedded resolver's port on the bridge address; queries to port 53 are redirected to it. */
  dnsPort?: number | undefined;
}

const HOST: NetnsRef | undefined = undefined; // the agent's own namespace: commands run without a wrapper

function gatewayOf(spec: EgressSpec): { gateway: string; prefix: number } {
  const cidr = parseCidr(spec.subnet);
  return { gateway: formatIPv4(cidr.start + 1), prefix: cidr.prefix };
}

/** Host-side veth name, derived from the sandbox so detach finds it after a restart. */
export function egressVethFor(sandboxKey: string): string {
  return 'g' + createHash('sha256').update(sandboxKey).digest('hex').slice(0, 12);
}

/** The sandbox's MAC on the egress bridge: fixed by its address, so the host guard can pin both. */
export function egressMacFor(ip: string): string {
  return macFromIp(ip);
}

/** The bridge's address: sandboxes' resolver and egress gateway. */
export function egressGateway(spec: EgressSpec): string {
  return gatewayOf(spec).gateway;
}

/** The transaction that replaces the gateway table with what `state` needs. */
function egressScript(spec: EgressSpec, state: EgressState): string {
  // The whole table is replaced in one transaction: the rule set is always exactly this.
  return [`table ip ${NFT_TABLE}`, `delete table ip ${NFT_TABLE}`, ...renderEgressTable(spec, state)].join('\n') + '\n';
}

/** Bridge, forwarding, masquerading and the resolver redirect in the host namespace; returns the bridge lines it ran. */
async function writeEgress(ctx: DataplaneContext, spec: EgressSpec, script: string): Promise<string[]> {
  const { gateway, prefix } = gatewayOf(spec);
  const links = await readLinks(ctx.runner, hostRef());
  const bridge = findLink(links, EGRESS_BRIDGE);
  const lines: string[] = [];
  if (!bridge) lines.push(`link add ${EGRESS_BRIDGE} type bridge`);
  if (!bridge?.ipv4.some((a) => a.address === gateway && a.prefixLength === prefix)) lines.push(`addr replace ${gateway}/${prefix} dev ${EGRESS_BRIDGE}`);
  if (!bridge?.up) lines.push(`link set dev ${EGRESS_BRIDGE} up`);
  await runBatch(ctx.runner, 'ip', [], lines);
  await run(ctx.runner, 'sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
  const result = await ctx.runner('nft', ['-f', '-'], script);
  if (result.exitCode !== 0) throw new Error(`nft -f (egress table) failed: ${result.stderr.trim()}`);
  return lines;
}

/** The host's gateway table (pure, for tests): delete-then-add of this replaces it in one transaction. */
export function renderEgressTable(spec: EgressSpec, state: EgressState): string[] {
  const { gateway } = gatewayOf(spec);
  const elements = [...new Set(state.noEgress)].sort();
  const dns = state.dnsPort;
  return [
    `table ip ${NFT_TABLE} {`,
    `  set no_egress {`,
    `    type ipv4_addr;`,
    ...(elements.length > 0 ? [`    elements = { ${elements.join(', ')} }`] : []),
    `  }`,
    ...(dns === undefined ? [] : [
      `  chain prerouting {`,
      `    type nat hook prerouting priority dstnat; policy accept;`,
      `    iifname "${EGRESS_BRIDGE}" ip daddr ${gateway} meta l4proto { tcp, udp } th dport 53 redirect to :${dns}`,
      `  }`,
    ]),
    // Sandboxes may reach the host only for DNS: not the agent's API or gossip ports, not sshd.
    `  chain input {`,
    `    type filter hook input priority filter; policy accept;`,
    `    iifname "${EGRESS_BRIDGE}" ct state established,related accept`,
    ...(dns === undefined ? [] : [`    iifname "${EGRESS_BRIDGE}" ip daddr ${gateway} meta l4proto { tcp, udp } th dport ${dns} accept`]),
    `    iifname "${EGRESS_BRIDGE}" icmp type echo-request accept`,
    `    iifname "${EGRESS_BRIDGE}" drop`,
    `  }`,
    `  chain postrouting {`,
    `    type nat hook postrouting priority srcnat; policy accept;`,
    `    ip saddr ${spec.subnet} oifname != "${EGRESS_BRIDGE}" masquerade`,
    `  }`,
    `  chain forward {`,
    `    type filter hook forward priority filter; policy accept;`,
    `    iifname "${EGRESS_BRIDGE}" ip saddr @no_egress drop`,
    // A leg may carry a container's overlay address (dataplane/container-routes.ts): only in answers to a DNATed flow.
    `    iifname "${EGRESS_BRIDGE}" ip saddr != ${spec.subnet} ct status & dnat == 0 drop`,
    // Sandboxes meet here only through a port one of them published (hairpin, dataplane/publish.ts).
    `    iifname "${EGRESS_BRIDGE}" oifname "${EGRESS_BRIDGE}" ct status dnat accept`,
    `    iifname "${EGRESS_BRIDGE}" oifname "${EGRESS_BRIDGE}" drop`,
    ...spec.blocked.map((cidr) => `    ip saddr ${spec.subnet} ip daddr ${cidr} drop`),
    `  }`,
    `}`,
  ];
}

/**
 * Plugs a sandbox into the gateway bridge (an isolated port) and, when it may
 * reach the outside, makes the bridge its default route.
 */
export async function attachEgress(ctx: DataplaneContext, sandbox: Sandbox, spec: EgressSpec, ip: string, mtu: number, outside = true, fresh = false): Promise<void> {
  if (fresh && await attachEgressFresh(ctx, sandbox, spec, ip, mtu, outside)) return;
  const { gateway, prefix } = gatewayOf(spec);
  const veth = egressVethFor(sandbox.key);
  const [hostLinks, sandboxLinks] = await Promise.all([readLinks(ctx.runner, hostRef()), readLinks(ctx.runner, sandbox.ref)]);
  const mac = egressMacFor(ip);
  const made = !findLink(hostLinks, veth) || !findLink(sandboxLinks, EGRESS_IFNAME);
  if (made) {
    if (findLink(hostLinks, veth)) await run(ctx.runner, 'ip', ['link', 'del', 'dev', veth]);
    // Born in the guarded group, so frames from the port are filtered before it ever carries one.
    await run(ctx.runner, 'ip', ['link', 'add', veth, 'mtu', String(mtu), 'group', String(EGRESS_PORT_GROUP), 'type', 'veth',
      'peer', 'name', EGRESS_IFNAME, 'mtu', String(mtu), 'address', mac, 'netns', netnsArg(sandbox.ref)]);
  }
  await runBatch(ctx.runner, 'ip', [], [
    `link set dev ${veth} group ${EGRESS_PORT_GROUP}`,
    `link set dev ${veth} master ${EGRESS_BRIDGE}`,
    `link set dev ${veth} type bridge_slave isolated on`,
    `link set dev ${veth} up`,
  ]);
  const [file, args] = inNetns(sandbox.ref, 'ip', []);
  await runBatch(ctx.runner, file, args, [
    `link set dev ${EGRESS_IFNAME} address ${mac}`,
    `addr replace ${ip}/${prefix} dev ${EGRESS_IFNAME}`,
    `link set dev ${EGRESS_IFNAME} up`,
    // A leg made just now carries no route yet: no need to read the sandbox's routes first.
    ...(made && outside ? [`route replace default via ${gateway} dev ${EGRESS_IFNAME}`] : []),
  ]);
  if (!made) await setEgressRoute(ctx, sandbox, spec, outside);
}

/**
 * A sandbox's first leg: made and set up in two commands (host side, sandbox
 * side) without reading either namespace first. Each batch stops at its first
 * failure; false then (a leg left from an earlier try, ...), and the caller
 * reads both sides and repairs from whatever this left.
 */
async function attachEgressFresh(ctx: DataplaneContext, sandbox: Sandbox, spec: EgressSpec, ip: string, mtu: number, outside: boolean): Promise<boolean> {
  const { gateway, prefix } = gatewayOf(spec);
  const veth = egressVethFor(sandbox.key);
  return tryBatches(ctx.runner, [
    ['ip', [], [
      // Born in the guarded group, so frames from the port are filtered before it ever carries one.
      `link add ${veth} mtu ${mtu} group ${EGRESS_PORT_GROUP} type veth peer name ${EGRESS_IFNAME} mtu ${mtu} address ${egressMacFor(ip)} netns ${netnsArg(sandbox.ref)}`,
      `link set dev ${veth} master ${EGRESS_BRIDGE}`,
      `link set dev ${veth} type bridge_slave isolated on`,
      `link set dev ${veth} up`,
    ]],
    [...inNetns(sandbox.ref, 'ip', []), [
      `addr add ${ip}/${prefix} dev ${EGRESS_IFNAME}`,
      `link set dev ${EGRESS_IFNAME} up`,
      ...(outside ? [`route replace default via ${gateway} dev ${EGRESS_IFNAME}`] : []),
    ]],
  ]);
}

/**
 * Sandboxes' host-side ports that exist but are not in the guarded group:
 * made before the host guard (or changed by hand). attachEgress repairs them.
 */
export async function unguardedEgressPorts(ctx: DataplaneContext, sandboxKeys: readonly string[]): Promise<string[]> {
  const links = await readLinks(ctx.runner, hostRef());
  return sandboxKeys.filter((key) => {
    const port = findLink(links, egressVethFor(key));
    return port !== undefined && port.group !== String(EGRESS_PORT_GROUP);
  });
}

/** Adds or removes the sandbox's default route through the gateway bridge. */
export async function setEgressRoute(ctx: DataplaneContext, sandbox: Sandbox, spec: EgressSpec, outside: boolean): Promise<void> {
  const { gateway } = gatewayOf(spec);
  const routes = await runJsonIn<{ gateway?: string; dev?: string }[]>(ctx.runner, sandbox.ref, 'ip', ['-4', '-j', 'route', 'show', 'default']);
  const viaEgress = routes.some((r) => r.dev === EGRESS_IFNAME);
  const [file, args] = inNetns(sandbox.ref, 'ip', []);
  if (outside && !viaEgress) await runBatch(ctx.runner, file, args, [`route replace default via ${gateway} dev ${EGRESS_IFNAME}`]);
  if (!outside && viaEgress) await runBatch(ctx.runner, file, args, [`route del default dev ${EGRESS_IFNAME}`]);
}

/**
 * Hairpin to a published port (dataplane/publish.ts) where br_netfilter is
 * loaded (Docker loads it): the bridge then runs the IP hooks itself, and a
 * same-host client's DNATed packet is bridged from its port straight to the
 * publisher's, which isolation between two isolated ports drops. So, there
 * only, a publisher's port is not isolated, and the bridge is told to run the
 * IP hooks whatever the host's sysctl says: the gateway table's forward chain
 * then drops every bridged frame between sandboxes but a DNATed flow's.
 * Without br_netfilter the hairpin is routed through the host and every port
 * stays isolated. Returns whether the port is isolated.
 */
export async function setEgressPublishing(ctx: DataplaneContext, sandbox: Sandbox, publishes: boolean): Promise<boolean> {
  const bridged = publishes && (await ctx.runner('sysctl', ['-n', 'net.bridge.bridge-nf-call-iptables'])).exitCode === 0;
  if (bridged) await run(ctx.runner, 'ip', ['link', 'set', 'dev', EGRESS_BRIDGE, 'type', 'bridge', 'nf_call_iptables', '1']);
  // hairpin: a publisher reaching its own published port is bridged back out of the port it came in on.
  await run(ctx.runner, 'ip', ['link', 'set', 'dev', egressVethFor(sandbox.key), 'type', 'bridge_slave', 'isolated', bridged ? 'off' : 'on', 'hairpin', bridged ? 'on' : 'off']);
  return !bridged;
}

/** Removes the sandbox's egress link (both ends go with the host end); false if there was none. */
export function detachEgress(ctx: DataplaneContext, sandbox: Sandbox): Promise<boolean> {
  return deleteLinkIfPresent(ctx.runner, 'own', egressVethFor(sandbox.key)); // the runner's own namespace: the host's
}

function hostRef(): NetnsRef {
  return HOST ?? { kind: 'path', path: '/proc/self/ns/net' };
}

/** The gateway bridge calls for one host's egress spec, bound to its data plane context. */
export interface EgressPlane {
  readonly spec: EgressSpec;
  /** Writes the bridge and its table unless the last write put exactly this there (`force` writes anyway: start-up, repair). */
  ensure(state: EgressState, force?: boolean): Promise<string[]>;
  /** `fresh`: the sandbox has no leg yet as far as the caller knows (its first plug), so the leg is made without reading first. */
  attach(sandbox: Sandbox, ip: string, mtu: number, outside: boolean, fresh?: boolean): Promise<void>;
  setRoute(sandbox: Sandbox, outside: boolean): Promise<void>;
  setPublishing(sandbox: Sandbox, publishes: boolean): Promise<boolean>;
  detach(sandbox: Sandbox): Promise<boolean>;
  unguardedPorts(sandboxKeys: readonly string[]): Promise<string[]>;
  /** The host routes to CNI containers' overlay addresses through their legs (container-routes.ts); skipped when they are what the last sync made, unless `force`. */
  syncContainerRoutes(routes: readonly ContainerRoute[], force?: boolean): Promise<string[]>;
}

export function egressPlane(ctx: DataplaneContext, spec: EgressSpec): EgressPlane {
  const written = new LastWritten();
  const routesSynced = new LastWritten();
  return {
    spec,
    ensure: async (state, force = false) => {
      const script = egressScript(spec, state);
      let changes: string[] = [];
      await written.write(script, force, async () => { changes = await writeEgress(ctx, spec, script); });
      return changes;
    },
    attach: (sandbox, ip, mtu, outside, fresh) => attachEgress(ctx, sandbox, spec, ip, mtu, outside, fresh),
    setRoute: (sandbox, outside) => setEgressRoute(ctx, sandbox, spec, outside),
    setPublishing: (sandbox, publishes) => setEgressPublishing(ctx, sandbox, publishes),
    detach: (sandbox) => detachEgress(ctx, sandbox),
    unguardedPorts: (keys) => unguardedEgressPorts(ctx, keys),
    syncContainerRoutes: async (routes, force = false) => {
      let changes: string[] = [];
      const key = JSON.stringify([...routes].sort((a, b) => a.ip.localeCompare(b.ip)));
      // The last write's key is its routes: diffed against them, unless forced or not known.
      const written = routesSynced.text;
      const previous = force || written === undefined ? undefined : (JSON.parse(written) as ContainerRoute[]);
      await routesSynced.write(key, force, async () => { changes = await syncContainerRoutes(ctx, EGRESS_BRIDGE, routes, previous); });
      return changes;
    },
  };
}
