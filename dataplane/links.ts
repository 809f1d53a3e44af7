// Reads links as `ip -d -j addr show` prints them and keeps the fields the
// data plane compares. One command gives links, addresses and VXLAN/bridge
// details together, so a check costs one spawn per namespace.
import { CommandError, type Runner } from './exec.ts';
import type { NetnsRef } from './netns.ts';
import { inNetns, netnsExists, runJsonIn } from './netns.ts';

export interface VxlanInfo {
  vni: number;
  local: string | undefined;
  port: number;
  learning: boolean;
  proxy: boolean;
}

export interface LinkState {
  ifindex: number;
  ifname: string;
  kind: string | undefined;
  mtu: number;
  up: boolean;
  mac: string;
  master: string | undefined;
  alias: string | undefined;
  /** Interface group, as ip prints it ("default" or a number). */
  group: string;
  /** Peer's ifindex for veth (in the peer's namespace), lower device for others. */
  linkIndex: number | undefined;
  /** Set when the peer / lower device is in another namespace. */
  linkNetnsId: number | undefined;
  ipv4: Array<{ address: string; prefixLength: number }>;
  vxlan: VxlanInfo | undefined;
}

interface RawLink {
  ifindex: number;
  ifname: string;
  flags?: string[];
  mtu: number;
  address?: string;
  master?: string;
  ifalias?: string;
  group?: string | number;
  link_index?: number;
  link_netnsid?: number;
  linkinfo?: { info_kind?: string; info_data?: Record<string, unknown> };
  addr_info?: Array<{ family?: string; local?: string; prefixlen?: number }>;
}

export function parseLinks(raw: unknown): LinkState[] {
  if (!Array.isArray(raw)) throw new Error('ip -j addr show did not print a JSON array');
  return (raw as RawLink[]).map((link) => {
    const data = link.linkinfo?.info_data;
    const kind = link.linkinfo?.info_kind;
    return {
      ifindex: link.ifindex,
      // "eth0@if3" appears only in the text output; JSON has the bare name.
      ifname: link.ifname,
      kind,
      mtu: link.mtu,
      up: (link.flags ?? []).includes('UP'),
      mac: (link.address ?? '').toLowerCase(),
      master: link.master,
      alias: link.ifalias,
      group: String(link.group ?? 'default'),
      linkIndex: link.link_index,
      linkNetnsId: link.link_netnsid,
      ipv4: (link.addr_info ?? [])
        .filter((a) => a.family === 'inet' && typeof a.local === 'string')
        .map((a) => ({ address: a.local!, prefixLength: a.prefixlen ?? 32 })),
      vxlan: kind === 'vxlan' && data
        ? {
          vni: Number(data['id']),
          local: typeof data['local'] === 'string' ? data['local'] : undefined,
          port: Number(data['port']),
          learning: data['learning'] === true,
          proxy: data['proxy'] === true,
        }
        : undefined,
    };
  });
}

export async function readLinks(runner: Runner, ref: NetnsRef): Promise<LinkState[]> {
  return parseLinks(await runJsonIn<unknown>(runner, ref, 'ip', ['-d', '-j', 'addr', 'show']));
}

/** A link as `ip link add` leaves it (down, no address, no master; a veth unless the caller says otherwise): callers fill in what they set. */
export function blankLink(ifname: string): LinkState {
  return { ifindex: 0, ifname, kind: 'veth', mtu: 0, up: false, mac: '', master: undefined, alias: undefined, group: 'default', linkIndex: undefined, linkNetnsId: undefined, ipv4: [], vxlan: undefined };
}

export function findLink(links: readonly LinkState[], ifname: string): LinkState | undefined {
  return links.find((l) => l.ifname === ifname);
}

/**
 * Deletes a link if it is there: false when it (or, for a named namespace, the
 * namespace) is not. `own`: the namespace the runner's commands run in. One command instead of a listing and a delete: detaching
 * is on the path of every container's DEL.
 */
export async function deleteLinkIfPresent(runner: Runner, ref: NetnsRef | 'own', ifname: string): Promise<boolean> {
  const del = ['link', 'del', 'dev', ifname];
  const [file, args] = ref === 'own' ? ['ip', del] : inNetns(ref, 'ip', del);
  const result = await runner(file, args);
  if (result.exitCode === 0) return true;
  if (/Cannot find device/.test(result.stderr)) return false;
  // A namespace that cannot be entered (gone, or a stale /run/netns file) holds no link of ours,
  // as before this took one command; one that can be entered failed for another reason.
  if (ref !== 'own' && !(await netnsExists(runner, ref))) return false;
  throw new CommandError([file, ...args].join(' '), result.exitCode, result.stderr);
}
