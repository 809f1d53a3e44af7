// One overlay network on this host: a namespace holding a bridge (the gateway)
// and a VXLAN device enslaved to it. ensureNetwork() makes the kernel match the
// spec and reports what it changed; removeNetwork() deletes all of it.
import type { DataplaneContext } from './context.ts';
import type { Network, NetworkSpec } from './types.ts';
import type { LinkState } from './links.ts';
import { existsSync } from 'node:fs';
import { run, runBatch, tryBatches } from './exec.ts';
import { BRIDGE, DEFAULT_DSTPORT, VXLAN, VXLAN_OVERHEAD, networkNamespaceName, validateIfName, validateVni } from './names.ts';
import { cidrHasAddress, parseCidr, parseIPv4 } from '../lib/ipv4.ts';
import { macFromIp } from './mac.ts';
import { deleteNamedNetns, ensureNamedNetns, inNetns, netnsByName, netnsExists, netnsPath } from './netns.ts';
import { markInfraNetns, unmarkInfraNetns } from './netns-guard.ts';
import { blankLink, findLink, readLinks } from './links.ts';
import { findUnderlay } from './underlay.ts';

export interface EnsureResult {
  network: Network;
  /** Human-readable list of what was changed; empty when the kernel already matched. */
  changes: string[];
}

/** Checks the spec and fills in defaults (the MTU from the underlay). */
export async function resolveNetwork(ctx: DataplaneContext, spec: NetworkSpec): Promise<Network> {
  validateVni(spec.vni);
  const subnet = parseCidr(spec.subnet);
  const gateway = parseIPv4(spec.gateway);
  parseIPv4(spec.vtep);
  if (!cidrHasAddress(subnet, gateway)) throw new Error(`network ${spec.name}: gateway ${spec.gateway} is not in subnet ${spec.subnet}`);
  if (spec.underlayDevice !== undefined) validateIfName(spec.underlayDevice);
  const dstPort = spec.dstPort ?? DEFAULT_DSTPORT;
  if (!Number.isInteger(dstPort) || dstPort < 1 || dstPort > 65535) throw new Error(`network ${spec.name}: dstPort ${dstPort} is not a UDP port`);
  let mtu = spec.mtu;
  if (mtu === undefined) {
    const underlay = await findUnderlay(ctx.runner, spec.vtep, spec.underlayDevice);
    mtu = underlay.mtu - VXLAN_OVERHEAD;
  }
  if (!Number.isInteger(mtu) || mtu < 576 || mtu > 65485) throw new Error(`network ${spec.name}: MTU ${mtu} is out of range 576-65485`);
  return {
    spec,
    vni: spec.vni,
    netns: networkNamespaceName(ctx.nsPrefix, spec.vni),
    bridge: BRIDGE,
    vxlan: VXLAN,
    mtu,
    prefixLength: subnet.prefix,
    dstPort,
    gatewayMac: macFromIp(spec.gateway),
  };
}

/** Why an existing VXLAN device cannot be kept; undefined if it can. */
export function vxlanMismatch(link: LinkState, network: Network): string | undefined {
  const v = link.vxlan;
  if (link.kind !== 'vxlan' || v === undefined) return `${link.ifname} is a ${link.kind ?? 'plain'} device, not vxlan`;
  if (v.vni !== network.vni) return `VNI ${v.vni}, want ${network.vni}`;
  if (v.local !== network.spec.vtep) return `local ${v.local ?? 'unset'}, want ${network.spec.vtep}`;
  if (v.port !== network.dstPort) return `dstport ${v.port}, want ${network.dstPort}`;
  if (v.learning) return 'learning is on, want nolearning';
  if (!v.proxy) return 'proxy (ARP suppression) is off';
  // A device created inside the network namespace has its UDP socket there,
  // where there is no underlay: it must have come from another namespace.
  if (link.linkNetnsId === undefined) return 'its UDP socket is inside the network namespace (not created in the host namespace)';
  return undefined;
}

export async function ensureNetwork(ctx: DataplaneContext, spec: NetworkSpec): Promise<EnsureResult> {
  const network = await resolveNetwork(ctx, spec);
  const changes: string[] = [];
  const ref = netnsByName(network.netns);
  // Marked before it exists: there is no moment when it could be adopted as a sandbox.
  markInfraNetns(network.netns);
  const made = await makeNetwork(ctx, network);
  if (made) return { network, changes: made };
  const created = await ensureNamedNetns(ctx.runner, network.netns);
  if (created) changes.push(`created namespace ${network.netns}`);
  // A namespace made just now holds only lo, up (ensureNamedNetns): nothing to read.
  let links = created ? [{ ...blankLink('lo'), kind: undefined, up: true }] : await readLinks(ctx.runner, ref);

  const vxlan = findLink(links, VXLAN);
  const mismatch = vxlan && vxlanMismatch(vxlan, network);
  if (vxlan && mismatch) {
    // VNI, local address and port cannot be changed on a live device: replace it.
    // Its FDB entries go with it; the caller's next reconcile restores them.
    const [file, args] = inNetns(ref, 'ip', ['link', 'del', 'dev', VXLAN]);
    await run(ctx.runner, file, args);
    changes.push(`deleted ${VXLAN} (${mismatch})`);
  }
  if (!vxlan || mismatch) {
    // Created here, in the caller's (host) namespace, and placed straight into
    // the network namespace: the UDP socket stays on the underlay, and there is
    // never a temporary device in the host namespace whose name could clash.
    await run(ctx.runner, 'ip', vxlanAdd(network));
    changes.push(`created ${VXLAN} (VNI ${network.vni}, local ${spec.vtep}, dstport ${network.dstPort})`);
    // Made just now: down, with the network's MTU, on no bridge. Known without reading it back.
    links = [...links.filter((l) => l.ifname !== VXLAN), { ...blankLink(VXLAN), kind: 'vxlan', mtu: network.mtu }];
  }

  const lines = bridgeAndPortLines(links, network, changes);
  const [file, args] = inNetns(ref, 'ip', []);
  await runBatch(ctx.runner, file, args, lines);
  return { network, changes };
}

/**
 * The first sandbox of a network on this host (most often): its namespace and
 * VXLAN device in one command, the bridge in a second, without reading
 * anything first. Undefined when the namespace's name is taken already or the
 * first command failed: the caller then reads what is there and repairs it.
 */
async function makeNetwork(ctx: DataplaneContext, network: Network): Promise<string[] | undefined> {
  if (existsSync(netnsPath(netnsByName(network.netns)))) return undefined;
  // `netns add` in a batch returns to the tool's own namespace: the VXLAN device is made
  // there, on the underlay, and placed straight into the new namespace (see below).
  if (!(await tryBatches(ctx.runner, [['ip', [], [`netns add ${network.netns}`, vxlanAdd(network).join(' ')]]]))) return undefined;
  const { spec } = network;
  const changes = [`created namespace ${network.netns}`, `created ${VXLAN} (VNI ${network.vni}, local ${spec.vtep}, dstport ${network.dstPort})`];
  // Made just now: lo down; the VXLAN device down, with the network's MTU, on no bridge.
  const links = [{ ...blankLink('lo'), kind: undefined }, { ...blankLink(VXLAN), kind: 'vxlan', mtu: network.mtu }];
  const [file, args] = inNetns(netnsByName(network.netns), 'ip', []);
  await runBatch(ctx.runner, file, args, bridgeAndPortLines(links, network, changes));
  return changes;
}

/**
 * The last sandbox of a network on this host left (most often): the network's
 * namespace holds its bridge and VXLAN device only. They go in one batch
 * without listing them first (the VXLAN device must go before the name: it
 * holds the VNI in the host namespace, and a namespace's devices are released
 * only once nothing runs in it), then the name. False when the batch did not
 * work out (a device missing, a stale name, ...): the caller then lists what is
 * there and deletes it.
 */
async function removeKnownNetwork(ctx: DataplaneContext, netns: string): Promise<boolean> {
  const ref = netnsByName(netns);
  if (!existsSync(netnsPath(ref))) return false;
  if (!(await tryBatches(ctx.runner, [[...inNetns(ref, 'ip', []), [`link del dev ${VXLAN}`, `link del dev ${BRIDGE}`]]]))) return false;
  await run(ctx.runner, 'ip', ['netns', 'delete', netns]);
  return true;
}

/** argv (after `ip`) that makes the network's VXLAN device in the caller's namespace and moves it into the network's. */
function vxlanAdd(network: Network): string[] {
  const { spec } = network;
  return ['link', 'add', VXLAN, 'mtu', String(network.mtu), 'netns', network.netns, 'type', 'vxlan',
    'id', String(network.vni), 'local', spec.vtep, 'dstport', String(network.dstPort), 'nolearning', 'proxy',
    ...(spec.underlayDevice ? ['dev', spec.underlayDevice] : [])];
}

/** Batch lines that bring br0, its address and the VXLAN port to the spec; notes each change. */
function bridgeAndPortLines(links: readonly LinkState[], network: Network, changes: string[]): string[] {
  const lines: string[] = [];
  const note = (line: string, why: string) => {
    lines.push(line);
    changes.push(why);
  };
  const lo = findLink(links, 'lo');
  if (lo && !lo.up) note('link set dev lo up', 'set lo up');

  let bridge = findLink(links, BRIDGE);
  if (bridge && bridge.kind !== 'bridge') {
    note(`link del dev ${BRIDGE}`, `deleted ${BRIDGE} (a ${bridge.kind ?? 'plain'} device, not a bridge)`);
    bridge = undefined;
  }
  const mtu = String(network.mtu);
  if (!bridge) {
    // A fixed MAC: by default a bridge takes the lowest MAC of its ports, which
    // would change the gateway's MAC whenever a sandbox comes or goes.
    note(`link add ${BRIDGE} mtu ${mtu} address ${network.gatewayMac} type bridge`, `created ${BRIDGE}`);
  } else {
    if (bridge.mtu !== network.mtu) note(`link set dev ${BRIDGE} mtu ${mtu}`, `set ${BRIDGE} mtu ${mtu} (was ${bridge.mtu})`);
    if (bridge.mac !== network.gatewayMac) note(`link set dev ${BRIDGE} address ${network.gatewayMac}`, `set ${BRIDGE} address ${network.gatewayMac}`);
  }
  const want = `${network.spec.gateway}/${network.prefixLength}`;
  const have = bridge?.ipv4 ?? [];
  for (const a of have) {
    if (`${a.address}/${a.prefixLength}` !== want) note(`addr del ${a.address}/${a.prefixLength} dev ${BRIDGE}`, `removed ${a.address}/${a.prefixLength} from ${BRIDGE}`);
  }
  if (!have.some((a) => `${a.address}/${a.prefixLength}` === want)) note(`addr add ${want} dev ${BRIDGE}`, `added ${want} to ${BRIDGE}`);

  const vxlan = findLink(links, VXLAN);
  if (!vxlan || vxlan.mtu !== network.mtu) note(`link set dev ${VXLAN} mtu ${mtu}`, `set ${VXLAN} mtu ${mtu}`);
  if (!vxlan || vxlan.master !== BRIDGE) note(`link set dev ${VXLAN} master ${BRIDGE}`, `enslaved ${VXLAN} to ${BRIDGE}`);
  if (!vxlan || !vxlan.up) note(`link set dev ${VXLAN} up`, `set ${VXLAN} up`);
  if (!bridge || !bridge.up) note(`link set dev ${BRIDGE} up`, `set ${BRIDGE} up`);
  return lines;
}

/**
 * Deletes the network's namespace. Its devices are deleted first: a namespace
 * outlives its name while any process runs in it, and a surviving VXLAN device
 * would keep its VNI busy in the host namespace.
 */
export async function removeNetwork(ctx: DataplaneContext, vni: number): Promise<boolean> {
  const netns = networkNamespaceName(ctx.nsPrefix, vni);
  const ref = netnsByName(netns);
  if (await removeKnownNetwork(ctx, netns)) {
    unmarkInfraNetns(netns);
    return true;
  }
  if (await netnsExists(ctx.runner, ref)) {
    const links = await readLinks(ctx.runner, ref);
    // Ports first (a veth's peer goes with it), then the bridge.
    const doomed = links.filter((l) => l.ifname !== 'lo').sort((a, b) => Number(a.kind === 'bridge') - Number(b.kind === 'bridge'));
    const [file, args] = inNetns(ref, 'ip', []);
    await runBatch(ctx.runner, file, args, doomed.map((l) => `link del dev ${l.ifname}`));
  }
  const deleted = await deleteNamedNetns(ctx.runner, netns);
  unmarkInfraNetns(netns);
  return deleted;
}
