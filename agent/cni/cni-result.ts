// The ADD result (CNI spec 1.0 "Success"): built from the agent's SandboxInfo
// reply for the one interface this request attached.
import { CNI_CODE, CniError } from './cni-error.ts';
import type { CniVersion } from "./cni-config.ts";

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
  dns: { nameservers?: string[] };
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
    dns: reply.nameserver ? { nameservers: [reply.nameserver] } : {},
  };
}
