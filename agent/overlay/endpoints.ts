// Read side of the per-network endpoint tables: decoded, validated endpoints.
import type { TableService } from '../cluster/table-service.ts';
import { endpointsTable } from '../cluster/table-topics.ts';
import { decodeEndpoint, type EndpointObject } from '../wire/objects-codec.ts';

/** The underlay address a member's roster record gives it (its only VTEP), undefined for strangers. */
export type VtepOf = (nodeId: string) => string | undefined;

/**
 * The endpoints of a network that may be programmed. An entry must describe
 * an endpoint of its own owner on its own network, reached at the owner's
 * roster address: a member that publishes another VTEP would otherwise have
 * every host send that endpoint's traffic (VXLAN frames carrying the
 * network's payload) to an address of its choosing.
 */
export function visibleEndpoints(tables: TableService, networkId: string, vtepOf: VtepOf): EndpointObject[] {
  const out: EndpointObject[] = [];
  for (const entry of tables.tables.list(endpointsTable(networkId))) {
    try {
      const endpoint = decodeEndpoint(entry.value);
      if (endpoint.nodeId === entry.owner && endpoint.networkId === networkId && endpoint.vtep === vtepOf(entry.owner)) out.push(endpoint);
    } catch {
      // malformed entries are never programmed
    }
  }
  return out;
}
