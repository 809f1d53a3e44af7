// Read side of the per-network endpoint tables: decoded, validated endpoints.
import type { TableService } from '../cluster/table-service.ts';
import { endpointsTable } from '../cluster/table-topics.ts';
import { decodeEndpoint, type EndpointObject } from '../wire/objects-codec.ts';

export function visibleEndpoints(tables: TableService, networkId: string): EndpointObject[] {
  const out: EndpointObject[] = [];
  for (const entry of tables.tables.list(endpointsTable(networkId))) {
    try {
      const endpoint = decodeEndpoint(entry.value);
      // An entry must describe an endpoint of its own owner on its own network.
      if (endpoint.nodeId === entry.owner && endpoint.networkId === networkId) out.push(endpoint);
    } catch {
      // malformed entries are never programmed
    }
  }
  return out;
}
