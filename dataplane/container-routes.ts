// Host routes to container overlay addresses, for the plugins a CNI runtime
// chains after weft: `portmap` DNATs a host port to the address in weft's
// result, the container's overlay address, which the host namespace has no
// route to (the network's bridge lives in the network's own namespace). A
// /32 route through the container's leg on the gateway bridge makes the DNATed
// flow reach it; the container answers through the same leg (its default
// route), and the host guard lets that leg carry the overlay address too.
// Only DNATed flows get through (the guard's forward chain, the gateway
// table): the route opens no other way in. The routes carry their own protocol
// number, so the set is replaced whole from what the agent wants.
import type { DataplaneContext } from './context.ts';
import { runJson, runBatch } from './exec.ts';
import { parseIPv4 } from '../lib/ipv4.ts';

/** Route protocol number that marks weft's container routes ("w"); iproute2 lists it as a number. */
export const CONTAINER_ROUTE_PROTO = 119;

export interface ContainerRoute {
  /** The container's overlay address. */
  ip: string;
  /** The container's address on the gateway bridge. */
  via: string;
}

/**
 * Makes the host's container routes exactly `routes` (through `bridge`, the
 * gateway bridge): adds or fixes what is missing, deletes the rest. The diff
 * is taken against `lastWritten` when the caller knows what its last
 * successful sync left (one command, on every container start's path), else
 * against what the kernel holds (start-up, the periodic repair, after a
 * failure: a route changed by hand is repaired then).
 */
export async function syncContainerRoutes(ctx: DataplaneContext, bridge: string, routes: readonly ContainerRoute[], lastWritten?: readonly ContainerRoute[]): Promise<string[]> {
  for (const r of routes) {
    parseIPv4(r.ip);
    parseIPv4(r.via);
  }
  const have = new Map((lastWritten ?? await readContainerRoutes(ctx)).map((r) => [r.ip, r.via]));
  const want = new Map(routes.map((r) => [r.ip, r.via]));
  const lines: string[] = [];
  for (const [ip, via] of have) if (want.get(ip) !== via) lines.push(`route del ${ip}/32 proto ${CONTAINER_ROUTE_PROTO}`);
  for (const [ip, via] of want) {
    if (have.get(ip) !== via) lines.push(`route replace ${ip}/32 via ${via} dev ${bridge} proto ${CONTAINER_ROUTE_PROTO}`);
  }
  await runBatch(ctx.runner, 'ip', [], lines);
  return lines;
}

async function readContainerRoutes(ctx: DataplaneContext): Promise<ContainerRoute[]> {
  const present = await runJson<Array<{ dst?: string; gateway?: string }>>(ctx.runner, 'ip',
    ['-4', '-j', 'route', 'show', 'table', 'main', 'proto', String(CONTAINER_ROUTE_PROTO)]);
  return present.map((r) => ({ ip: (r.dst ?? '').replace(/\/32$/, ''), via: r.gateway ?? '' }));
}
