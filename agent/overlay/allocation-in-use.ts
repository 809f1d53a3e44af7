// Which allocated values cluster objects still use, per allocation space, as
// this host's tables show them. A reclaim of a gone node's ranges keeps these
// reserved and frees the rest: the gone node's own list of values died with
// it. Endpoints of gone nodes do not count: their entries are hidden and then
// refused everywhere, so nothing routes to those addresses any more.
import { parseCidr, parseIPv4, subnetIndex } from '../../lib/ipv4.ts';
import type { EndpointObject, NetworkObject, ServiceObject } from '../wire/objects-codec.ts';
import { POOL_SUBNET_PREFIX, subnetSpace, VNI_SPACE } from './spaces.ts';

export interface InUseState {
  pool: string;
  networks: readonly NetworkObject[];
  services: readonly ServiceObject[];
  endpoints: (networkId: string) => readonly EndpointObject[];
  isActive: (nodeId: string) => boolean;
}

const IP_SPACE_PREFIX = 'ip/';

/** Values in use in `space`; undefined when the space belongs to a network that no longer exists. */
export function valuesInUse(space: string, state: InUseState): number[] | undefined {
  if (space === VNI_SPACE.name) return state.networks.map((n) => n.vni);
  if (space === subnetSpace(state.pool).name) {
    const pool = parseCidr(state.pool);
    return state.networks.filter((n) => n.poolSubnet).flatMap((n) => poolIndex(pool, n.subnet));
  }
  if (space.startsWith(IP_SPACE_PREFIX)) {
    const networkId = space.slice(IP_SPACE_PREFIX.length);
    if (!state.networks.some((n) => n.id === networkId)) return undefined;
    const vips = state.services.filter((s) => s.networkId === networkId && s.vip !== '').map((s) => parseIPv4(s.vip));
    const endpoints = state.endpoints(networkId).filter((e) => state.isActive(e.nodeId)).map((e) => parseIPv4(e.ip));
    return [...vips, ...endpoints];
  }
  return [];
}

/** A peer's network may claim a pool subnet that is not one (a hostile or broken entry): it reserves nothing. */
function poolIndex(pool: ReturnType<typeof parseCidr>, subnet: string): number[] {
  try {
    const cidr = parseCidr(subnet);
    return cidr.prefix === POOL_SUBNET_PREFIX ? [subnetIndex(pool, cidr)] : [];
  } catch {
    return [];
  }
}
