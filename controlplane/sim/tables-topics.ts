// Which gossipsub topic carries which table, as the agent does it
// (agent/cluster/table-topics.ts; controlplane may not import agent/, so the
// mapping is repeated here): the cluster tables share one topic, each overlay
// network's endpoint table has its own, and only nodes on that network
// subscribe to it.

export const CLUSTER_TABLES: readonly string[] = ['networks', 'services', 'allocations'];
export const CLUSTER_TOPIC = 'weft/tables/1';
const ENDPOINTS_PREFIX = 'endpoints/';

export function endpointsTable(network: string): string {
  return ENDPOINTS_PREFIX + network;
}

export function networkOfTable(table: string): string | undefined {
  return table.startsWith(ENDPOINTS_PREFIX) ? table.slice(ENDPOINTS_PREFIX.length) : undefined;
}

export function networkTopic(network: string): string {
  return `weft/net/${network}/1`;
}

export function topicOfTable(table: string): string {
  const network = networkOfTable(table);
  return network === undefined ? CLUSTER_TOPIC : networkTopic(network);
}

/** Networks and services outlive the node that created them (the agent's clusterScoped). */
export function isClusterScoped(table: string): boolean {
  return table === 'networks' || table === 'services';
}
