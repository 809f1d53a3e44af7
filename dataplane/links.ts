// Reads links as `ip -d -j addr show` prints them and keeps the fields the
// data plane compares. One command gives links, addresses and VXLAN/bridge
// details together, so a check costs one spawn per namespace.
import type { Runner } from './exec.ts';
import type { NetnsRef } from './netns.ts';
import { runJsonIn } from './netns.ts';

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

export function findLink(links: readonly LinkState[], ifname: string): LinkState | undefined {
  return links.find((l) => l.ifname === ifname);
}
