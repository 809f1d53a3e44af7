// Which services of the `services` table this host resolves and programs.
// Services are written by any member, and every sandbox's load-balancing
// table holds all the services of its networks in one nftables transaction:
// one service with a name nft cannot take, or a VIP:port that another
// service already has, would make that transaction fail for every sandbox on
// the network. So each service is judged on its own, and a bad one is left
// out (and reported) while the others still program.
import { hostRange, parseCidr, parseIPv4 } from '../../lib/ipv4.ts';
import { SERVICE_NAME } from '../../lib/names.ts';

/** A DNS label, and a valid nftables chain name once prefixed (dataplane/lb/ruleset.ts). */
/** Names the resolver gives a meaning of its own. */
export const RESERVED_SERVICE_NAMES: ReadonlySet<string> = new Set(['tasks']);

export interface ServiceClaim {
  name: string;
  networkId: string;
  mode: 'vip' | 'dnsrr';
  vip: string;
  ports: readonly { port: number; protocol: 'tcp' | 'udp' }[];
  /** Ports every host accepts on for the service (the ingress routing mesh): unique cluster-wide. */
  publish?: readonly { published: number; protocol: 'tcp' | 'udp' }[];
}

/** A service with the version of the table entry that carries it. */
export interface Candidate<T extends ServiceClaim> {
  service: T;
  lamport: number;
  owner: string;
}

export interface NetworkRange {
  subnet: string;
  gateway: string;
}

export interface RefusedService {
  name: string;
  problem: string;
}

export interface Sieved<T> {
  services: T[];
  refused: RefusedService[];
}

/**
 * The services that may be programmed. A VIP:port/protocol, or a published
 * port (every host's, so one per cluster), already held by an older service
 * (lower Lamport time, then owner) stays with it: the established service
 * keeps working, the newcomer is refused. Two hosts creating services with
 * the same published port at once thus agree on which one every host gets.
 */
export function sieveServices<T extends ServiceClaim>(candidates: readonly Candidate<T>[], networks: ReadonlyMap<string, NetworkRange>): Sieved<T> {
  const oldestFirst = [...candidates].sort((a, b) => a.lamport - b.lamport || (a.owner < b.owner ? -1 : a.owner > b.owner ? 1 : 0) || a.service.name.localeCompare(b.service.name));
  const taken = new Map<string, string>();
  const services: T[] = [];
  const refused: RefusedService[] = [];
  for (const { service } of oldestFirst) {
    const problem = badService(service, networks) ?? clash(service, taken);
    if (problem !== undefined) {
      refused.push({ name: service.name, problem });
      continue;
    }
    for (const key of portKeys(service)) taken.set(key, service.name);
    services.push(service);
  }
  return { services, refused };
}

function badService(service: ServiceClaim, networks: ReadonlyMap<string, NetworkRange>): string | undefined {
  if (!SERVICE_NAME.test(service.name)) return `the name "${service.name}" is not a DNS label`;
  if (RESERVED_SERVICE_NAMES.has(service.name.toLowerCase())) return `the name "${service.name}" is reserved for DNS`;
  if (service.mode !== 'vip') return undefined;
  const network = networks.get(service.networkId);
  if (network === undefined) return `its network ${service.networkId} is not known here`;
  // A VIP outside its network would capture sandboxes' traffic to that address (another host, a resolver).
  return isHostAddressOf(service.vip, network) ? undefined : `its VIP ${service.vip} is not a host address of its network ${network.subnet}`;
}

/** True when `ip` is in the network's host range (no network or broadcast address) and is not its gateway. */
export function isHostAddressOf(ip: string, network: NetworkRange): boolean {
  try {
    const address = parseIPv4(ip);
    const range = hostRange(parseCidr(network.subnet));
    return address >= range.start && address < range.end && ip !== network.gateway;
  } catch {
    return false;
  }
}

function clash(service: ServiceClaim, taken: ReadonlyMap<string, string>): string | undefined {
  for (const key of portKeys(service)) {
    const holder = taken.get(key);
    if (holder !== undefined) return `${key} belongs to the older service "${holder}"`;
  }
  return undefined;
}

function portKeys(service: ServiceClaim): string[] {
  const published = (service.publish ?? []).map((p) => `published port ${p.published}/${p.protocol}`);
  return service.mode === 'vip' ? [...service.ports.map((p) => `${service.vip}:${p.port}/${p.protocol}`), ...published] : published;
}
