// Which gossipsub topic carries which table. Cluster tables share one topic;
// each overlay network's endpoint table has its own, to which only hosts with
// endpoints on that network subscribe (networkdb's per-network groups).
// network-hosts: key `<network id>|<node id>`, present while that host has endpoints on the
// network; it is how any member can tell whether a network is still in use.
export const CLUSTER_TABLES = ['networks', 'services', 'allocations', 'network-hosts'] as const;
export const CLUSTER_TABLE_TOPIC = 'weft/tables/1';
const NETWORK_TOPIC_PREFIX = 'weft/net/';
const ENDPOINTS_PREFIX = 'endpoints/';

export function endpointsTable(networkId: string): string {
  return ENDPOINTS_PREFIX + networkId;
}

export function networkOfTable(table: string): string | undefined {
  return table.startsWith(ENDPOINTS_PREFIX) ? table.slice(ENDPOINTS_PREFIX.length) : undefined;
}

export function networkTopic(networkId: string): string {
  return `${NETWORK_TOPIC_PREFIX}${networkId}/1`;
}

export function networkOfTopic(topic: string): string | undefined {
  return topic.startsWith(NETWORK_TOPIC_PREFIX) && topic.endsWith('/1') ? topic.slice(NETWORK_TOPIC_PREFIX.length, -2) : undefined;
}

export function topicOfTable(table: string): string {
  const network = networkOfTable(table);
  return network === undefined ? CLUSTER_TABLE_TOPIC : networkTopic(network);
}

export function isClusterTable(table: string): boolean {
  return (CLUSTER_TABLES as readonly string[]).includes(table);
}
