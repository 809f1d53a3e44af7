// Which endpoints of a network this host programs (FDB, neighbours, DNS,
// load balancing). An endpoint is written by its own host only (signed
// entries, agent/overlay/endpoints.ts), but that host chooses its IP: a
// member could claim the gateway, a service VIP, an address outside the
// network, or the IP of another host's endpoint, and every host would steer
// that address's traffic to it. So each endpoint is judged on its own, and a
// bad one is left out (and reported by `weft doctor`) while the others still
// program.
//
// Not checked against the allocation ring: a ring says which node may hand
// out a value next, not who holds a value now. Ranges move on handover and
// reclaim while the values in use stay with their endpoints (the reclaimer
// keeps them reserved, agent/overlay/allocation-in-use.ts), so an honest
// endpoint's IP is routinely outside its owner's current ranges. Uniqueness
// is what the ring guarantees among honest hosts, and that is checked here.
import { isHostAddressOf, type NetworkRange } from '../services/service-sieve.ts';

export interface EndpointClaim {
  id: string;
  ip: string;
}

/** An endpoint with the version of the table entry that carries it. */
export interface EndpointCandidate<T extends EndpointClaim> {
  endpoint: T;
  lamport: number;
  owner: string;
}

export interface RefusedEndpoint {
  id: string;
  owner: string;
  problem: string;
}

export interface SievedEndpoints<T> {
  endpoints: T[];
  refused: RefusedEndpoint[];
}

/**
 * The endpoints that may be programmed. An IP already held by an older
 * endpoint (lower Lamport time, then owner, then ID) stays with it: the
 * established endpoint keeps working, the newcomer is refused.
 */
export function sieveEndpoints<T extends EndpointClaim>(candidates: readonly EndpointCandidate<T>[], network: NetworkRange, serviceVips: ReadonlySet<string>): SievedEndpoints<T> {
  const oldestFirst = [...candidates].sort((a, b) => a.lamport - b.lamport || compare(a.owner, b.owner) || compare(a.endpoint.id, b.endpoint.id));
  const taken = new Map<string, { id: string; owner: string }>();
  const endpoints: T[] = [];
  const refused: RefusedEndpoint[] = [];
  for (const { endpoint, owner } of oldestFirst) {
    const problem = badAddress(endpoint.ip, network, serviceVips) ?? clash(endpoint.ip, taken);
    if (problem !== undefined) {
      refused.push({ id: endpoint.id, owner, problem });
      continue;
    }
    taken.set(endpoint.ip, { id: endpoint.id, owner });
    endpoints.push(endpoint);
  }
  return { endpoints, refused };
}

function badAddress(ip: string, network: NetworkRange, serviceVips: ReadonlySet<string>): string | undefined {
  if (!isHostAddressOf(ip, network)) return `its IP ${ip} is not a host address of its network ${network.subnet} (or is the gateway ${network.gateway})`;
  if (serviceVips.has(ip)) return `its IP ${ip} is a service VIP`;
  return undefined;
}

function clash(ip: string, taken: ReadonlyMap<string, { id: string; owner: string }>): string | undefined {
  const holder = taken.get(ip);
  return holder === undefined ? undefined : `its IP ${ip} belongs to the older endpoint ${holder.id} of ${holder.owner}`;
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
