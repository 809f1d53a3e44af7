// Bandwidth limits on a sandbox's link to a network, as the CNI `bandwidth`
// plugin makes them on a host-side veth, but on weft's network-side veth (in
// the network's namespace, where that plugin cannot find it):
//   - into the sandbox: a tbf as the root qdisc of the network-side veth (what
//     leaves the bridge towards the sandbox);
//   - out of the sandbox: the veth's ingress redirected to an ifb device in the
//     same namespace, with a tbf as the ifb's root qdisc.
// The veth's qdiscs die with the veth; the ifb does not, so its name derives
// from the veth's (itself derived from sandbox and network): detach removes it
// without saved state, and an ifb whose veth is gone is a leftover anyone can
// recognise (removeLeftoverShaping, `weft doctor`).
import type { DataplaneContext } from './context.ts';
import type { BandwidthLimits, TokenBucket } from '../lib/bandwidth.ts';
import type { LinkState } from './links.ts';
import type { Sandbox } from './sandbox.ts';
import { run, runBatch } from './exec.ts';
import { deleteLinkIfPresent, findLink, readLinks } from './links.ts';
import { networkNamespaceName, vethNameFor } from './names.ts';
import { inNetns, netnsByName, netnsExists, runJsonIn, type NetnsRef } from './netns.ts';

/** The bandwidth plugin's latency: how long a packet may wait in the bucket before tbf drops it. */
const LATENCY = '25ms';
const IFB = /^ifb([0-9a-f]{12})$/;

/** The ifb carrying a sandbox's egress limit: 'ifb' + the veth's 12 hex digits (15 characters). */
export function ifbNameFor(hostVeth: string): string {
  return `ifb${hostVeth.slice(1)}`;
}

/** What tc reports on the veth and its ifb, in tc's units (bytes per second, bytes). */
export interface ShapingState {
  /** The veth's root tbf (into the sandbox). */
  ingress?: { rateBytes: number; burstBytes: number } | undefined;
  /** The ifb's root tbf (out of the sandbox); undefined when the ifb or its tbf is missing. */
  egress?: { rateBytes: number; burstBytes: number } | undefined;
  /** The veth's ingress qdisc redirects to the ifb. */
  redirected: boolean;
}

interface RawQdisc {
  kind?: string;
  root?: boolean;
  options?: { rate?: number; burst?: number };
}

interface RawFilter {
  options?: { actions?: Array<{ kind?: string; to_dev?: string; mirred_action?: string }> };
}

interface Where {
  netns: string;
  ref: NetnsRef;
  veth: string;
  ifb: string;
}

function where(ctx: DataplaneContext, sandbox: Sandbox, vni: number): Where {
  const netns = networkNamespaceName(ctx.nsPrefix, vni);
  const veth = vethNameFor(sandbox.key, netns);
  return { netns, ref: netnsByName(netns), veth, ifb: ifbNameFor(veth) };
}

function tbf(dev: string, bucket: TokenBucket): string {
  // tc takes the burst in bytes (the plugin divides by 8 too).
  return `qdisc replace dev ${dev} root handle 1: tbf rate ${bucket.rateBits}bit burst ${Math.floor(bucket.burstBits / 8)} latency ${LATENCY}`;
}

/**
 * Makes the sandbox's link to network `vni` carry exactly `limits` (none: no
 * shaping at all); `mtu` is the link's, which the ifb takes. Idempotent.
 */
export async function shapeSandbox(ctx: DataplaneContext, sandbox: Sandbox, vni: number, limits: BandwidthLimits, mtu: number): Promise<string[]> {
  const w = where(ctx, sandbox, vni);
  const links = await readLinks(ctx.runner, w.ref);
  if (!findLink(links, w.veth)) throw new Error(`veth ${w.veth} is missing in ${w.netns}: the sandbox is not attached`);
  const qdiscs = await runJsonIn<RawQdisc[]>(ctx.runner, w.ref, 'tc', ['-j', 'qdisc', 'show', 'dev', w.veth]);
  const hasRootTbf = qdiscs.some((q) => q.root === true && q.kind === 'tbf');
  const hasIngress = qdiscs.some((q) => q.kind === 'ingress');
  const hasIfb = findLink(links, w.ifb) !== undefined;

  const ipLines: string[] = [];
  const tcLines: string[] = [];
  if (limits.ingress) tcLines.push(tbf(w.veth, limits.ingress));
  else if (hasRootTbf) tcLines.push(`qdisc del dev ${w.veth} root`);
  // The redirect is re-made whole: deleting the ingress qdisc drops its filter with it.
  if (hasIngress) tcLines.push(`qdisc del dev ${w.veth} ingress`);
  if (limits.egress) {
    if (!hasIfb) ipLines.push(`link add ${w.ifb} mtu ${mtu} type ifb`);
    ipLines.push(`link set dev ${w.ifb} mtu ${mtu} up`);
    tcLines.push(tbf(w.ifb, limits.egress),
      `qdisc add dev ${w.veth} handle ffff: ingress`,
      `filter add dev ${w.veth} parent ffff: protocol all prio 1 u32 match u32 0 0 action mirred egress redirect dev ${w.ifb}`);
  }
  const [ipFile, ipArgs] = inNetns(w.ref, 'ip', []);
  const [tcFile, tcArgs] = inNetns(w.ref, 'tc', []);
  await runBatch(ctx.runner, ipFile, ipArgs, ipLines);
  await runBatch(ctx.runner, tcFile, tcArgs, tcLines);
  // Without an egress limit the ifb goes last, once nothing redirects to it.
  if (!limits.egress && hasIfb) await run(ctx.runner, ...inNetns(w.ref, 'ip', ['link', 'del', 'dev', w.ifb]));
  return [...ipLines, ...tcLines].map((l) => `${w.netns}: ${l}`);
}

/** Removes what shaping leaves when the veth goes (its ifb); false when there was nothing. */
export async function unshapeSandbox(ctx: DataplaneContext, sandbox: Sandbox, vni: number): Promise<boolean> {
  const w = where(ctx, sandbox, vni);
  return deleteLinkIfPresent(ctx.runner, w.ref, w.ifb); // false also when the ifb went with the namespace
}

/** The shaping on the sandbox's link to network `vni`, as tc reports it. */
export async function readShaping(ctx: DataplaneContext, sandbox: Sandbox, vni: number): Promise<ShapingState> {
  const w = where(ctx, sandbox, vni);
  const links = await readLinks(ctx.runner, w.ref);
  if (!findLink(links, w.veth)) return { redirected: false };
  const [vethQdiscs, filters] = await Promise.all([
    runJsonIn<RawQdisc[]>(ctx.runner, w.ref, 'tc', ['-j', 'qdisc', 'show', 'dev', w.veth]),
    runJsonIn<RawFilter[]>(ctx.runner, w.ref, 'tc', ['-j', 'filter', 'show', 'dev', w.veth, 'ingress']).catch(() => []),
  ]);
  const ifbQdiscs = findLink(links, w.ifb) ? await runJsonIn<RawQdisc[]>(ctx.runner, w.ref, 'tc', ['-j', 'qdisc', 'show', 'dev', w.ifb]) : [];
  const bucketOf = (qdiscs: RawQdisc[]) => {
    const q = qdiscs.find((x) => x.root === true && x.kind === 'tbf');
    return q ? { rateBytes: q.options?.rate ?? 0, burstBytes: q.options?.burst ?? 0 } : undefined;
  };
  const redirected = vethQdiscs.some((q) => q.kind === 'ingress')
    && filters.some((f) => (f.options?.actions ?? []).some((a) => a.kind === 'mirred' && a.mirred_action === 'redirect' && a.to_dev === w.ifb));
  return { ingress: bucketOf(vethQdiscs), egress: bucketOf(ifbQdiscs), redirected };
}

/** How the kernel's shaping differs from `want` (CNI CHECK); empty when it matches. */
export function shapingProblems(want: BandwidthLimits, have: ShapingState, veth = 'the network-side veth'): string[] {
  const problems: string[] = [];
  const compare = (dir: 'ingress' | 'egress', where: string, bucket: TokenBucket | undefined, got: ShapingState['ingress']) => {
    if (!bucket) {
      if (got) problems.push(`${dir} is limited to ${got.rateBytes * 8} bit/s on ${where}, want no limit`);
      return;
    }
    if (!got) {
      problems.push(`${dir} limit of ${bucket.rateBits} bit/s is missing (no tbf on ${where})`);
      return;
    }
    // tc reports the rate in bytes per second: compare in those, with a little room for its rounding.
    const wantBytes = Math.floor(bucket.rateBits / 8);
    if (Math.abs(got.rateBytes - wantBytes) > Math.max(1, wantBytes / 100)) problems.push(`${dir} rate is ${got.rateBytes * 8} bit/s on ${where}, want ${bucket.rateBits}`);
  };
  compare('ingress', veth, want.ingress, have.ingress);
  compare('egress', `its ifb`, want.egress, have.egress);
  if (want.egress && !have.redirected) problems.push(`egress is not redirected from ${veth} to its ifb`);
  return problems;
}

/** ifb devices in a network namespace whose veth is gone: shaping left behind by a sandbox that went. */
export function leftoverIfbs(links: readonly LinkState[]): string[] {
  return links.filter((l) => l.kind === 'ifb').map((l) => IFB.exec(l.ifname)).filter((m) => m !== null)
    .filter((m) => !findLink(links, `v${m[1]}`)).map((m) => m[0]);
}

/** Removes the leftover ifb devices of network `vni` on this host (agent start); returns their names. */
export async function removeLeftoverShaping(ctx: DataplaneContext, vni: number): Promise<string[]> {
  const ref = netnsByName(networkNamespaceName(ctx.nsPrefix, vni));
  if (!(await netnsExists(ctx.runner, ref))) return [];
  const leftovers = leftoverIfbs(await readLinks(ctx.runner, ref));
  const [file, args] = inNetns(ref, 'ip', []);
  await runBatch(ctx.runner, file, args, leftovers.map((name) => `link del dev ${name}`));
  return leftovers;
}
