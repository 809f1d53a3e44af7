// Sandboxes: network namespaces that workloads run in. The data plane creates
// them (named `${nsPrefix}-s${id}`) or adopts existing ones by name or path
// (container runtimes, `weft attach`), and plugs them into networks with a veth
// pair: one end enslaved to the network's bridge, the other inside the sandbox.
import type { DataplaneContext } from './context.ts';
import type { AttachmentSpec, Network } from './types.ts';
import type { LinkState } from './links.ts';
import type { NetnsRef } from './netns.ts';
import { run, runBatch, tryBatches } from './exec.ts';
import { BRIDGE, networkNamespaceName, sandboxNamespaceName, validateIfName, vethNameFor } from './names.ts';
import { cidrHasAddress, parseCidr, parseIPv4 } from '../lib/ipv4.ts';
import { macFromIp, normalizeMac } from './mac.ts';
import { deleteNamedNetns, describeNetns, ensureNamedNetns, inNetns, netnsArg, netnsByName, netnsExists, netnsRef, runJsonIn } from './netns.ts';
import { blankLink, deleteLinkIfPresent, findLink, readLinks } from './links.ts';
import { removeResolvConf } from './resolv-conf.ts';
import { refuseUnadoptable } from './netns-guard.ts';

export interface Sandbox {
  ref: NetnsRef;
  /** Stable identity ("name:X" or "path:/proc/..."): the veth names derive from it. */
  key: string;
  /** Made by this data plane: destroySandbox deletes the namespace itself, not only weft's interfaces. */
  owned: boolean;
}

export interface Attachment {
  vni: number;
  /** Interface inside the sandbox (eth0, eth1, ...). */
  ifname: string;
  /** The veth end in the network namespace, enslaved to the bridge. */
  hostVeth: string;
  ip: string;
  mac: string;
  changes: string[];
}

/** A handle without I/O, e.g. to detach after an agent restart. */
export function sandboxFrom(ctx: DataplaneContext, nameOrPath: string): Sandbox {
  const ref = netnsRef(nameOrPath);
  const key = ref.kind === 'name' ? `name:${ref.name}` : `path:${ref.path}`;
  return { ref, key, owned: ref.kind === 'name' && ref.name.startsWith(`${ctx.nsPrefix}-s`) };
}

/** Creates (or finds) the sandbox namespace `${nsPrefix}-s${id}`. */
export async function createSandbox(ctx: DataplaneContext, id: string): Promise<{ sandbox: Sandbox; created: boolean }> {
  const name = sandboxNamespaceName(ctx.nsPrefix, id);
  const created = await ensureNamedNetns(ctx.runner, name);
  return { sandbox: sandboxFrom(ctx, name), created };
}

/**
 * Adopts an existing namespace by name (/run/netns/NAME) or path
 * (/proc/PID/ns/net, ...): a network namespace, never the host's own nor one
 * of weft's (netns-guard.ts).
 */
export async function adoptSandbox(ctx: DataplaneContext, nameOrPath: string): Promise<Sandbox> {
  const sandbox = sandboxFrom(ctx, nameOrPath);
  await refuseUnadoptable(ctx, sandbox.ref);
  return sandbox;
}

interface DefaultRoute {
  gateway?: string;
  dev?: string;
}

export async function attachSandbox(ctx: DataplaneContext, sandbox: Sandbox, network: Network, spec: AttachmentSpec): Promise<Attachment> {
  parseIPv4(spec.ip);
  if (!cidrHasAddress(parseCidr(network.spec.subnet), parseIPv4(spec.ip))) throw new Error(`${spec.ip} is not in network ${network.spec.name}'s subnet ${network.spec.subnet}`);
  if (spec.ip === network.spec.gateway) throw new Error(`${spec.ip} is network ${network.spec.name}'s gateway address`);
  if (spec.ifname !== undefined) validateIfName(spec.ifname);
  const mac = normalizeMac(spec.mac ?? macFromIp(spec.ip));
  const hostVeth = vethNameFor(sandbox.key, network.netns);
  if (spec.ifname !== undefined) {
    const fresh = await attachFresh(ctx, sandbox, network, { ...spec, ifname: spec.ifname }, hostVeth, mac);
    if (fresh) return fresh;
  }
  const netRef = netnsByName(network.netns);
  const changes: string[] = [];
  const [netLinks, sandboxLinksRead, routes] = await Promise.all([
    readLinks(ctx.runner, netRef),
    readLinks(ctx.runner, sandbox.ref),
    runJsonIn<DefaultRoute[]>(ctx.runner, sandbox.ref, 'ip', ['-4', '-j', 'route', 'show', 'default']),
  ]);
  let sandboxLinks = sandboxLinksRead;

  let host = findLink(netLinks, hostVeth);
  let peer = host === undefined ? undefined : peerOf(host, sandboxLinks);
  if (host && (peer === undefined || (spec.ifname !== undefined && peer.ifname !== spec.ifname))) {
    // Our veth exists but leads elsewhere (the sandbox namespace was re-created
    // under the same name) or has the wrong name inside: start over.
    const [file, args] = inNetns(netRef, 'ip', ['link', 'del', 'dev', hostVeth]);
    await run(ctx.runner, file, args);
    changes.push(`deleted ${hostVeth} (${peer === undefined ? 'its peer is not in the sandbox' : `peer named ${peer.ifname}, want ${spec.ifname}`})`);
    sandboxLinks = sandboxLinks.filter((l) => l !== peer);
    host = undefined;
    peer = undefined;
  }

  const mtu = String(network.mtu);
  let ifname: string;
  if (host === undefined || peer === undefined) {
    ifname = spec.ifname ?? firstFreeEth(sandboxLinks);
    if (findLink(sandboxLinks, ifname)) {
      throw new Error(`sandbox ${describeNetns(sandbox.ref)} already has an interface ${ifname} that is not weft's link to network ${network.spec.name}; choose another interface name`);
    }
    // Both ends are created directly in their namespaces: nothing ever appears
    // in the host namespace, so no temporary name can clash there.
    await run(ctx.runner, 'ip', ['link', 'add', hostVeth, 'mtu', mtu, 'netns', network.netns, 'type', 'veth',
      'peer', 'name', ifname, 'mtu', mtu, 'address', mac, 'netns', netnsArg(sandbox.ref)]);
    changes.push(`created veth ${hostVeth} (in ${network.netns}) <-> ${ifname} (in ${describeNetns(sandbox.ref)})`);
    host = { ...blankLink(hostVeth), mtu: network.mtu };
    peer = { ...blankLink(ifname), mtu: network.mtu, mac };
  } else {
    ifname = peer.ifname;
  }

  const netLines: string[] = [];
  const hostAlias = `weft:${sandbox.key}:${ifname}`;
  if (host.master !== BRIDGE) netLines.push(`link set dev ${hostVeth} master ${BRIDGE}`);
  if (host.mtu !== network.mtu) netLines.push(`link set dev ${hostVeth} mtu ${mtu}`);
  if (host.alias !== hostAlias) netLines.push(`link set dev ${hostVeth} alias ${hostAlias}`);
  if (!host.up) netLines.push(`link set dev ${hostVeth} up`);
  changes.push(...netLines.map((l) => `${network.netns}: ${l}`));

  const lines = sandboxLines(sandboxLinks, peer, ifname, mac, network, spec, routes);
  changes.push(...lines.map((l) => `${describeNetns(sandbox.ref)}: ${l}`));
  const [netFile, netArgs] = inNetns(netRef, 'ip', []);
  const [sbFile, sbArgs] = inNetns(sandbox.ref, 'ip', []);
  await runBatch(ctx.runner, netFile, netArgs, netLines);
  await runBatch(ctx.runner, sbFile, sbArgs, lines);
  return { vni: network.vni, ifname, hostVeth, ip: spec.ip, mac, changes };
}

/**
 * The common case, a container's first link to this network (a CNI ADD, a
 * Docker endpoint): both ends made and set up in two commands, one per
 * namespace, without reading either first. Each batch stops at its first
 * failure; undefined then (a link of that name is left from an earlier try,
 * the interface name is taken, ...), and the caller reads both namespaces and
 * reconciles from whatever this left.
 */
async function attachFresh(ctx: DataplaneContext, sandbox: Sandbox, network: Network, spec: AttachmentSpec & { ifname: string }, hostVeth: string, mac: string): Promise<Attachment | undefined> {
  const { ifname } = spec;
  const mtu = String(network.mtu);
  const netLines = [
    `link add ${hostVeth} mtu ${mtu} type veth peer name ${ifname} mtu ${mtu} address ${mac} netns ${netnsArg(sandbox.ref)}`,
    `link set dev ${hostVeth} master ${BRIDGE}`,
    `link set dev ${hostVeth} alias weft:${sandbox.key}:${ifname}`,
    `link set dev ${hostVeth} up`,
  ];
  const lines = [
    'link set dev lo up',
    `link set dev ${ifname} alias weft:${network.netns}`,
    `addr add ${spec.ip}/${network.prefixLength} dev ${ifname}`,
    `link set dev ${ifname} up`,
    ...(spec.defaultRoute ? [`route replace default via ${network.spec.gateway} dev ${ifname}`] : []),
  ];
  const made = await tryBatches(ctx.runner, [[...inNetns(netnsByName(network.netns), 'ip', []), netLines], [...inNetns(sandbox.ref, 'ip', []), lines]]);
  if (!made) return undefined;
  const changes = [
    `created veth ${hostVeth} (in ${network.netns}) <-> ${ifname} (in ${describeNetns(sandbox.ref)})`,
    ...netLines.slice(1).map((l) => `${network.netns}: ${l}`),
    ...lines.map((l) => `${describeNetns(sandbox.ref)}: ${l}`),
  ];
  return { vni: network.vni, ifname, hostVeth, ip: spec.ip, mac, changes };
}

function sandboxLines(links: readonly LinkState[], peer: LinkState, ifname: string, mac: string, network: Network, spec: AttachmentSpec, routes: readonly DefaultRoute[]): string[] {
  const lines: string[] = [];
  const lo = findLink(links, 'lo');
  if (lo && !lo.up) lines.push('link set dev lo up');
  let up = peer.up;
  if (peer.mac !== mac) {
    // A veth takes a new MAC only while down.
    if (up) lines.push(`link set dev ${ifname} down`);
    lines.push(`link set dev ${ifname} address ${mac}`);
    up = false;
  }
  if (peer.mtu !== network.mtu) lines.push(`link set dev ${ifname} mtu ${network.mtu}`);
  const alias = `weft:${network.netns}`;
  if (peer.alias !== alias) lines.push(`link set dev ${ifname} alias ${alias}`);
  const want = `${spec.ip}/${network.prefixLength}`;
  for (const a of peer.ipv4) if (`${a.address}/${a.prefixLength}` !== want) lines.push(`addr del ${a.address}/${a.prefixLength} dev ${ifname}`);
  if (!peer.ipv4.some((a) => `${a.address}/${a.prefixLength}` === want)) lines.push(`addr add ${want} dev ${ifname}`);
  if (!up) lines.push(`link set dev ${ifname} up`);
  const current = routes.find((r) => r.dev === ifname);
  if (spec.defaultRoute) {
    if (current?.gateway !== network.spec.gateway) lines.push(`route replace default via ${network.spec.gateway} dev ${ifname}`);
  } else if (current) {
    lines.push(`route del default dev ${ifname}`);
  }
  return lines;
}

/** The sandbox end of a network-side veth: each names the other's ifindex. */
export function peerOf(host: LinkState, sandboxLinks: readonly LinkState[]): LinkState | undefined {
  if (host.kind !== 'veth' || host.linkNetnsId === undefined) return undefined;
  return sandboxLinks.find((l) => l.kind === 'veth' && l.ifindex === host.linkIndex && l.linkIndex === host.ifindex && l.linkNetnsId !== undefined);
}

function firstFreeEth(links: readonly LinkState[]): string {
  for (let i = 0; ; i++) if (!findLink(links, `eth${i}`)) return `eth${i}`;
}

/** Removes the sandbox's link to a network (both veth ends); false if there was none. */
export async function detachSandbox(ctx: DataplaneContext, sandbox: Sandbox, vni: number): Promise<boolean> {
  const netns = networkNamespaceName(ctx.nsPrefix, vni);
  return deleteLinkIfPresent(ctx.runner, netnsByName(netns), vethNameFor(sandbox.key, netns));
}

/**
 * Detaches the sandbox from the given networks. An owned sandbox also loses
 * every remaining veth (a namespace outlives its name while a process runs in
 * it, and must not stay plugged into a bridge), then its namespace and
 * resolv.conf. An adopted one is left as it was before weft touched it.
 */
export async function destroySandbox(ctx: DataplaneContext, sandbox: Sandbox, vnis: readonly number[]): Promise<string[]> {
  const changes: string[] = [];
  for (const vni of vnis) if (await detachSandbox(ctx, sandbox, vni)) changes.push(`detached from VNI ${vni}`);
  if (sandbox.ref.kind !== 'name') return changes;
  if (sandbox.owned) {
    if (await netnsExists(ctx.runner, sandbox.ref)) {
      const leftovers = (await readLinks(ctx.runner, sandbox.ref)).filter((l) => l.kind === 'veth');
      const [file, args] = inNetns(sandbox.ref, 'ip', []);
      await runBatch(ctx.runner, file, args, leftovers.map((l) => `link del dev ${l.ifname}`));
      changes.push(...leftovers.map((l) => `deleted ${l.ifname}`));
    }
    if (await deleteNamedNetns(ctx.runner, sandbox.ref.name)) changes.push(`deleted namespace ${sandbox.ref.name}`);
  }
  if (removeResolvConf(sandbox.ref.name)) changes.push(`removed /etc/netns/${sandbox.ref.name}/resolv.conf`);
  return changes;
}
