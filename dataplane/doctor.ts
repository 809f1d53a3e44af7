// `weft doctor` for the kernel side: compares desired state with what the
// kernel holds and says, for each difference, what is wrong and what to do.
// Read-only: it never repairs (ensureNetwork / attachSandbox / reconcile do).
import type { DataplaneContext } from './context.ts';
import type { AttachmentSpec, Network, NetworkEndpoints, NetworkSpec } from './types.ts';
import type { LinkState } from './links.ts';
import { BRIDGE, VXLAN, VXLAN_OVERHEAD, networkNamespaceName, vethNameFor } from './names.ts';
import { describeNetns, listNamedNetns, netnsByName, netnsExists, runJsonIn } from './netns.ts';
import { findLink, readLinks } from './links.ts';
import { resolveNetwork, vxlanMismatch } from './overlay-network.ts';
import { findUnderlay } from './underlay.ts';
import { desiredEntries, diffFdb, diffNeighbours } from './diff.ts';
import { readFdb } from './fdb.ts';
import { readNeighbours } from './neighbours.ts';
import { macFromIp, normalizeMac } from './mac.ts';
import { peerOf, sandboxFrom } from './sandbox.ts';
import { checkNamespaceHome } from './namespace-home.ts';
import { leftoverIfbs } from './bandwidth.ts';

export interface Finding {
  /** What the finding is about, e.g. "network blue (VNI 4097)" or "sandbox web-1 eth0". */
  subject: string;
  problem: string;
  hint: string;
}

export interface DoctorAttachment {
  /** Sandbox namespace name or path. */
  sandbox: string;
  vni: number;
  spec: AttachmentSpec;
}

export interface DoctorInput {
  networks: readonly NetworkSpec[];
  endpoints?: readonly NetworkEndpoints[];
  attachments?: readonly DoctorAttachment[];
}

const REAPPLY = 'the agent\'s periodic reconcile repairs this; if it persists, look for reconcile errors in the agent log';
/** Listing every missing entry of a 10k-endpoint network helps nobody. */
const MAX_ENTRY_FINDINGS = 20;

export async function doctor(ctx: DataplaneContext, input: DoctorInput): Promise<Finding[]> {
  const findings: Finding[] = [];
  const home = checkNamespaceHome();
  if (home) findings.push({ subject: 'agent process', problem: home.problem, hint: home.hint });

  const networks = new Map<number, Network>();
  for (const spec of input.networks) {
    const subject = `network ${spec.name} (VNI ${spec.vni})`;
    try {
      const network = await resolveNetwork(ctx, spec);
      networks.set(spec.vni, network);
      findings.push(...(await checkNetwork(ctx, network, subject)));
    } catch (error) {
      findings.push({ subject, problem: (error as Error).message, hint: 'check the network definition and this host\'s underlay (--advertise-addr)' });
    }
  }

  const expected = new Set(input.networks.map((n) => networkNamespaceName(ctx.nsPrefix, n.vni)));
  for (const name of await listNamedNetns(ctx.runner, `${ctx.nsPrefix}-n`)) {
    if (/-n[0-9]+$/.test(name) && !expected.has(name)) {
      findings.push({ subject: `namespace ${name}`, problem: 'network namespace of a network this host should not have', hint: `a leftover: the agent removes it on its next reconcile, or \`ip netns delete ${name}\`` });
    }
  }

  for (const want of input.endpoints ?? []) {
    const network = networks.get(want.vni);
    if (network) findings.push(...(await checkEntries(ctx, network, want)));
  }
  for (const attachment of input.attachments ?? []) {
    const network = networks.get(attachment.vni);
    if (network) findings.push(...(await checkAttachment(ctx, network, attachment)));
  }
  return findings;
}

async function checkNetwork(ctx: DataplaneContext, network: Network, subject: string): Promise<Finding[]> {
  const findings: Finding[] = [];
  const problem = (what: string, hint = REAPPLY) => findings.push({ subject, problem: what, hint });
  const ref = netnsByName(network.netns);
  if (!(await netnsExists(ctx.runner, ref))) {
    problem(`namespace ${network.netns} is missing`);
    return findings;
  }
  const links = await readLinks(ctx.runner, ref);
  const bridge = findLink(links, BRIDGE);
  if (!bridge || bridge.kind !== 'bridge') problem(`${BRIDGE} is missing in ${network.netns}`);
  else {
    if (!bridge.up) problem(`${BRIDGE} is down`);
    if (bridge.mtu !== network.mtu) problem(`${BRIDGE} MTU is ${bridge.mtu}, want ${network.mtu}`);
    const want = `${network.spec.gateway}/${network.prefixLength}`;
    if (!bridge.ipv4.some((a) => `${a.address}/${a.prefixLength}` === want)) problem(`${BRIDGE} lacks the gateway address ${want}`);
    if (bridge.mac !== network.gatewayMac) problem(`${BRIDGE} MAC is ${bridge.mac}, want ${network.gatewayMac}`);
  }
  const vxlan = findLink(links, VXLAN);
  if (!vxlan) problem(`${VXLAN} is missing in ${network.netns}`);
  else {
    const mismatch = vxlanMismatch(vxlan, network);
    if (mismatch) problem(`${VXLAN}: ${mismatch}`, 'the device must be re-created (ensureNetwork does it); its FDB entries are restored by the next reconcile');
    if (!vxlan.up) problem(`${VXLAN} is down`);
    if (vxlan.mtu !== network.mtu) problem(`${VXLAN} MTU is ${vxlan.mtu}, want ${network.mtu}`);
    if (vxlan.master !== BRIDGE) problem(`${VXLAN} is not a port of ${BRIDGE}`);
  }
  for (const ifb of leftoverIfbs(links)) {
    problem(`${ifb} in ${network.netns} is bandwidth shaping left by a sandbox that is gone (no veth v${ifb.slice(3)})`, `the agent removes it when it starts; or \`ip -n ${network.netns} link del ${ifb}\``);
  }
  const underlay = await findUnderlay(ctx.runner, network.spec.vtep, network.spec.underlayDevice).catch((error: Error) => {
    problem(error.message, 'configure the VTEP address on this host or fix the advertise address');
    return undefined;
  });
  if (underlay && underlay.mtu - VXLAN_OVERHEAD < network.mtu) {
    problem(`overlay MTU ${network.mtu} does not fit the underlay ${underlay.ifname} (MTU ${underlay.mtu}): encapsulated packets above ${underlay.mtu - VXLAN_OVERHEAD} bytes will be dropped`,
      `set the network MTU to ${underlay.mtu - VXLAN_OVERHEAD} or less, or raise the underlay MTU`);
  }
  return findings;
}

async function checkEntries(ctx: DataplaneContext, network: Network, want: NetworkEndpoints): Promise<Finding[]> {
  const subject = `network ${network.spec.name} (VNI ${network.vni})`;
  const ref = netnsByName(network.netns);
  let fdbFindings: string[];
  let neighFindings: string[];
  try {
    const desired = desiredEntries(want.endpoints);
    const [fdb, neighbours] = await Promise.all([readFdb(ctx.runner, ref, VXLAN), readNeighbours(ctx.runner, ref, VXLAN)]);
    const fdbByMac = new Map(fdb.map((e) => [e.mac, e] as const));
    const neighByIp = new Map(neighbours.map((e) => [e.ip, e] as const));
    fdbFindings = diffFdb(desired.fdb, fdb).map((o) => o.op === 'add' ? `FDB entry ${o.mac} -> ${o.vtep} is missing`
      : o.op === 'delete' ? `stale FDB entry ${o.mac} -> ${fdbByMac.get(o.mac)?.vtep ?? '?'}`
      : `FDB entry ${o.mac} points to ${describeFdb(fdbByMac.get(o.mac))}, want ${o.vtep} (permanent)`);
    neighFindings = diffNeighbours(desired.neighbours, neighbours).map((o) => o.op === 'add' ? `neighbour entry ${o.ip} -> ${o.mac} is missing`
      : o.op === 'delete' ? `stale neighbour entry ${o.ip} -> ${neighByIp.get(o.ip)?.mac ?? '(incomplete)'}`
      : `neighbour entry ${o.ip} is ${neighByIp.get(o.ip)?.mac ?? '(incomplete)'}${neighByIp.get(o.ip)?.permanent ? '' : ' (not permanent)'}, want ${o.mac}`);
  } catch (error) {
    return [{ subject, problem: `cannot compare remote endpoints: ${(error as Error).message}`, hint: REAPPLY }];
  }
  const all = [...fdbFindings, ...neighFindings];
  const findings = all.slice(0, MAX_ENTRY_FINDINGS).map((problem) => ({ subject, problem, hint: REAPPLY }));
  if (all.length > MAX_ENTRY_FINDINGS) {
    findings.push({ subject, problem: `... ${all.length - MAX_ENTRY_FINDINGS} more entry differences (${fdbFindings.length} FDB, ${neighFindings.length} neighbour in all)`, hint: REAPPLY });
  }
  return findings;
}

function describeFdb(entry: { vtep: string; permanent: boolean; overrides: boolean } | undefined): string {
  if (!entry) return '?';
  return `${entry.vtep}${entry.permanent ? '' : ' (not permanent)'}${entry.overrides ? ' (with its own port/VNI)' : ''}`;
}

async function checkAttachment(ctx: DataplaneContext, network: Network, attachment: DoctorAttachment): Promise<Finding[]> {
  const findings: Finding[] = [];
  const sandbox = sandboxFrom(ctx, attachment.sandbox);
  const name = describeNetns(sandbox.ref);
  const subject = `sandbox ${name} on network ${network.spec.name}`;
  const problem = (what: string, hint = 'attach the sandbox again (attachSandbox is idempotent and repairs it)') => findings.push({ subject, problem: what, hint });
  if (!(await netnsExists(ctx.runner, sandbox.ref))) {
    problem(`namespace ${name} is missing or cannot be entered`, 'the sandbox is gone: detach it so its address is released');
    return findings;
  }
  const hostVeth = vethNameFor(sandbox.key, network.netns);
  const netRef = netnsByName(network.netns);
  if (!(await netnsExists(ctx.runner, netRef))) return findings; // reported with the network
  const [netLinks, sandboxLinks, routes] = await Promise.all([
    readLinks(ctx.runner, netRef),
    readLinks(ctx.runner, sandbox.ref),
    runJsonIn<Array<{ gateway?: string; dev?: string }>>(ctx.runner, sandbox.ref, 'ip', ['-4', '-j', 'route', 'show', 'default']),
  ]);
  const host = findLink(netLinks, hostVeth);
  if (!host) {
    problem(`veth ${hostVeth} is missing in ${network.netns}: the sandbox is not plugged into the network`);
    return findings;
  }
  if (host.master !== BRIDGE) problem(`${hostVeth} is not a port of ${BRIDGE}`);
  if (!host.up) problem(`${hostVeth} is down`);
  if (host.mtu !== network.mtu) problem(`${hostVeth} MTU is ${host.mtu}, want ${network.mtu}`);
  const peer: LinkState | undefined = peerOf(host, sandboxLinks);
  if (!peer) {
    problem(`the peer of ${hostVeth} is not inside the sandbox`);
    return findings;
  }
  const ifname = peer.ifname;
  if (attachment.spec.ifname !== undefined && attachment.spec.ifname !== ifname) problem(`interface is named ${ifname}, want ${attachment.spec.ifname}`);
  const mac = normalizeMac(attachment.spec.mac ?? macFromIp(attachment.spec.ip));
  if (peer.mac !== mac) problem(`${ifname} MAC is ${peer.mac}, want ${mac}`);
  if (!peer.up) problem(`${ifname} is down`);
  if (peer.mtu !== network.mtu) problem(`${ifname} MTU is ${peer.mtu}, want ${network.mtu}`);
  const want = `${attachment.spec.ip}/${network.prefixLength}`;
  if (!peer.ipv4.some((a) => `${a.address}/${a.prefixLength}` === want)) problem(`${ifname} lacks address ${want} (has ${peer.ipv4.map((a) => `${a.address}/${a.prefixLength}`).join(', ') || 'none'})`);
  const viaThis = routes.find((r) => r.dev === ifname);
  if (attachment.spec.defaultRoute && viaThis?.gateway !== network.spec.gateway) {
    problem(`no default route via ${network.spec.gateway} dev ${ifname} (default routes: ${routes.map((r) => `via ${r.gateway ?? '-'} dev ${r.dev ?? '-'}`).join(', ') || 'none'})`);
  }
  if (!attachment.spec.defaultRoute && viaThis) problem(`default route goes through ${ifname}, which should not carry it`);
  return findings;
}
