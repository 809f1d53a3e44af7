// Egress: sandboxes on non-internal networks reach the outside through a
// bridge in the host namespace (Docker's docker_gwbridge), masqueraded to the
// host's own address. The overlay keeps only its subnet route; the default
// route goes here. Internal networks never get this link.
import { createHash } from 'node:crypto';
import type { DataplaneContext } from './context.ts';
import { run, runBatch } from './exec.ts';
import { findLink, readLinks } from './links.ts';
import { inNetns, netnsArg, type NetnsRef } from './netns.ts';
import type { Sandbox } from './sandbox.ts';
import { parseCidr, formatIPv4 } from '../controlplane/allocation/ipv4.ts';

export const EGRESS_BRIDGE = 'weft_gw';
export const EGRESS_IFNAME = 'egress0';
const NFT_TABLE = 'weft_egress';

export interface EgressSpec {
  /** Host-local subnet of the egress bridge, e.g. 172.31.255.0/24; the bridge takes its first address. */
  subnet: string;
  /** Destinations egress must never carry (the overlay address pool): another network is not "outside". */
  blocked: string[];
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

/** Bridge, forwarding and masquerading in the host namespace; idempotent. */
export async function ensureEgress(ctx: DataplaneContext, spec: EgressSpec): Promise<string[]> {
  const { gateway, prefix } = gatewayOf(spec);
  const changes: string[] = [];
  const links = await readLinks(ctx.runner, hostRef());
  const bridge = findLink(links, EGRESS_BRIDGE);
  const lines: string[] = [];
  if (!bridge) lines.push(`link add ${EGRESS_BRIDGE} type bridge`);
  if (!bridge?.ipv4.some((a) => a.address === gateway && a.prefixLength === prefix)) lines.push(`addr replace ${gateway}/${prefix} dev ${EGRESS_BRIDGE}`);
  if (!bridge?.up) lines.push(`link set dev ${EGRESS_BRIDGE} up`);
  await runBatch(ctx.runner, 'ip', [], lines);
  changes.push(...lines);
  await run(ctx.runner, 'sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
  // The whole table is replaced in one transaction: the rule set is always exactly this.
  const ruleset = [
    `table ip ${NFT_TABLE} {`,
    `  chain postrouting {`,
    `    type nat hook postrouting priority srcnat; policy accept;`,
    `    ip saddr ${spec.subnet} oifname != "${EGRESS_BRIDGE}" masquerade`,
    `  }`,
    `  chain forward {`,
    `    type filter hook forward priority filter; policy accept;`,
    ...spec.blocked.map((cidr) => `    ip saddr ${spec.subnet} ip daddr ${cidr} drop`),
    `  }`,
    `}`,
  ];
  // Delete-then-add in one transaction: `nft -f` adds to an existing table otherwise.
  const script = [`table ip ${NFT_TABLE}`, `delete table ip ${NFT_TABLE}`, ...ruleset].join('\n') + '\n';
  const result = await ctx.runner('nft', ['-f', '-'], script);
  if (result.exitCode !== 0) throw new Error(`nft -f (egress masquerade) failed: ${result.stderr.trim()}`);
  return changes;
}

/** Plugs a sandbox into the egress bridge with `ip` and makes it the sandbox's default route. */
export async function attachEgress(ctx: DataplaneContext, sandbox: Sandbox, spec: EgressSpec, ip: string, mtu: number): Promise<void> {
  const { gateway, prefix } = gatewayOf(spec);
  const veth = egressVethFor(sandbox.key);
  const hostLinks = await readLinks(ctx.runner, hostRef());
  const sandboxLinks = await readLinks(ctx.runner, sandbox.ref);
  if (!findLink(hostLinks, veth) || !findLink(sandboxLinks, EGRESS_IFNAME)) {
    if (findLink(hostLinks, veth)) await run(ctx.runner, 'ip', ['link', 'del', 'dev', veth]);
    await run(ctx.runner, 'ip', ['link', 'add', veth, 'mtu', String(mtu), 'type', 'veth', 'peer', 'name', EGRESS_IFNAME, 'mtu', String(mtu), 'netns', netnsArg(sandbox.ref)]);
  }
  await runBatch(ctx.runner, 'ip', [], [`link set dev ${veth} master ${EGRESS_BRIDGE}`, `link set dev ${veth} up`]);
  const [file, args] = inNetns(sandbox.ref, 'ip', []);
  await runBatch(ctx.runner, file, args, [
    `addr replace ${ip}/${prefix} dev ${EGRESS_IFNAME}`,
    `link set dev ${EGRESS_IFNAME} up`,
    `route replace default via ${gateway} dev ${EGRESS_IFNAME}`,
  ]);
}

/** Removes the sandbox's egress link (both ends go with the host end); false if there was none. */
export async function detachEgress(ctx: DataplaneContext, sandbox: Sandbox): Promise<boolean> {
  const veth = egressVethFor(sandbox.key);
  if (!findLink(await readLinks(ctx.runner, hostRef()), veth)) return false;
  await run(ctx.runner, 'ip', ['link', 'del', 'dev', veth]);
  return true;
}

function hostRef(): NetnsRef {
  return HOST ?? { kind: 'path', path: '/proc/self/ns/net' };
}
