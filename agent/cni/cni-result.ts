// The ADD result (CNI spec 1.0 "Success"): built from the agent's SandboxInfo
// reply for the one interface this request attached.
import { CNI_CODE, CniError } from './cni-error.ts';
import type { CniVersion } from './cni-config.ts';

/** The parts of the agent's SandboxInfo reply a result needs (proto/agent.proto). */
export interface SandboxReply {
  id?: string;
  netns?: string;
  interfaces?: Array<{ network: string; ifname: string; mac: string; ip: string; prefixLength: number; gateway: string }>;
  nameserver?: string;
  defaultGateway?: string;
}

export interface CniResult {
  cniVersion: string;
  interfaces: Array<{ name: string; mac: string; sandbox: string }>;
  ips: Array<{ address: string; gateway: string; interface: number; version?: '4' }>;
  routes: Array<{ dst: string; gw: string }>;
  dns: { nameservers?: string[]; search?: string[]; options?: string[] };
}

/**
 * weft's resolver, and the resolv.conf settings a `weft run` sandbox gets with it
 * (gateway.ts): `ndots:0`, so a short name goes to the resolver as it is, which
 * answers single-label names itself. The search list is the network's name: in
 * weft's naming `<name>.<network>` is the same name restricted to that network
 * (docs/dns.md), so a runtime that drops the options and keeps the host's
 * search domains still asks for `web.blue` first and gets weft's answer rather
 * than a detour through the host's upstreams.
 */
export function resolverDns(nameserver: string | undefined, network: string): CniResult['dns'] {
  if (!nameserver) return {};
  return { nameservers: [nameserver], search: [network], options: ['ndots:0'] };
}

export function buildResult(version: CniVersion, reply: SandboxReply, network: string, ifname: string, netnsPath: string): CniResult {
  const iface = reply.interfaces?.find((i) => i.network === network && i.ifname === ifname);
  if (!iface) throw new CniError(CNI_CODE.agentFailed, `the weft agent's reply has no interface ${ifname} on network ${network}`);
  const ip = { address: `${iface.ip}/${iface.prefixLength}`, gateway: iface.gateway, interface: 0 };
  return {
    cniVersion: version,
    interfaces: [{ name: iface.ifname, mac: iface.mac, sandbox: netnsPath }],
    ips: [version === '0.4.0' ? { ...ip, version: '4' } : ip],
    routes: reply.defaultGateway ? [{ dst: '0.0.0.0/0', gw: reply.defaultGateway }] : [],
    dns: resolverDns(reply.nameserver, network),
  };
}
