// The allocation spaces the overlay draws from, mapped to integer ranges for
// the ring allocator: VNIs, /24 subnets of the default pool (by index), and
// each network's host addresses (endpoint IPs and service VIPs share them).
import { parseCidr, parseIPv4, hostRange, subnetCount } from '../../lib/ipv4.ts';
import type { SpaceDefinition } from '../allocation/allocation-service.ts';

export type { SpaceDefinition };

/** What the overlay needs from the allocation service (agent/allocation). */
export interface Allocations {
  define(space: SpaceDefinition, initialise: boolean): void;
  allocate(space: string): Promise<number>;
  allocateValue(space: string, value: number): Promise<number>;
  free(space: string, value: number): Promise<void>;
  drop(space: string): void;
}

export const POOL_SUBNET_PREFIX = 24;
export const VNI_SPACE: SpaceDefinition = { name: 'vni', start: 1, end: 16_777_216 };

export function subnetSpace(pool: string): SpaceDefinition {
  return { name: 'subnet', start: 0, end: subnetCount(parseCidr(pool), POOL_SUBNET_PREFIX) };
}

/** Host addresses after the gateway (the first host address) up to the last usable one. */
export function ipSpace(networkId: string, subnet: string, gateway: string): SpaceDefinition {
  const hosts = hostRange(parseCidr(subnet));
  return { name: `ip/${networkId}`, start: parseIPv4(gateway) + 1, end: hosts.end };
}
