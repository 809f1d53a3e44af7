// Read side of the per-network endpoint tables: decoded, validated endpoints.
import type { TableService } from '../cluster/table-service.ts';
import { endpointsTable } from '../../controlplane/node/topics.ts';
import { decodeEntries } from '../../controlplane/tables/index.ts';
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
  // Malformed entries, and entries about another owner, network or VTEP, are never programmed.
  const { decoded } = decodeEntries(tables.tables.list(endpointsTable(network.id)), (entry) => decodeEndpoint(entry.value));
  const candidates: EndpointCandidate<EndpointObject>[] = decoded
    .filter(({ entry, value }) => value.nodeId === entry.owner && value.networkId === network.id && value.vtep === vtepOf(entry.owner))
    .map(({ entry, value }) => ({ endpoint: value, lamport: entry.lamport, owner: entry.owner }));
  return sieveEndpoints(candidates, network, context.serviceVips);
}

export function visibleEndpoints(tables: TableService, context: EndpointContext): EndpointObject[] {
  return sievedEndpoints(tables, context).endpoints;
}
