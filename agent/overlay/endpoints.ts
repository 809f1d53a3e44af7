// Read side of the per-network endpoint tables: decoded, validated endpoints.
import type { TableService } from '../cluster/table-service.ts';
import { endpointsTable } from '../../controlplane/node/topics.ts';
import { decodeEndpoint, type EndpointObject, type NetworkObject } from '../wire/objects-codec.ts';
import { sieveEndpoints, type EndpointCandidate, type SievedEndpoints } from '../../controlplane/overlay/endpoint-sieve.ts';

/** The underlay address a member's roster record gives it (its only VTEP), undefined for strangers. */
export type VtepOf = (nodeId: string) => string | undefined;

export interface EndpointContext {
  network: Pick<NetworkObject, 'id' | 'subnet' | 'gateway'>;
  vtepOf: VtepOf;
  /** VIPs of the services programmed on this network: no endpoint may take one. */
  serviceVips: ReadonlySet<string>;
}

/**
 * The endpoints of a network that may be programmed, and the ones left out.
 * An entry must describe an endpoint of its own owner on its own network,
 * reached at the owner's roster address: a member that publishes another
 * VTEP would otherwise have every host send that endpoint's traffic (VXLAN
 * frames carrying the network's payload) to an address of its choosing. Its
 * IP must then be a free host address of the network (endpoint-sieve.ts).
 */
export function sievedEndpoints(tables: TableService, context: EndpointContext): SievedEndpoints<EndpointObject> {
  const { network, vtepOf } = context;
  const candidates: EndpointCandidate<EndpointObject>[] = [];
  for (const entry of tables.tables.list(endpointsTable(network.id))) {
    try {
      const endpoint = decodeEndpoint(entry.value);
      if (endpoint.nodeId === entry.owner && endpoint.networkId === network.id && endpoint.vtep === vtepOf(entry.owner)) {
        candidates.push({ endpoint, lamport: entry.lamport, owner: entry.owner });
      }
    } catch {
      // malformed entries are never programmed
    }
  }
  return sieveEndpoints(candidates, network, context.serviceVips);
}

export function visibleEndpoints(tables: TableService, context: EndpointContext): EndpointObject[] {
  return sievedEndpoints(tables, context).endpoints;
}
