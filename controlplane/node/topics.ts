// Which gossipsub topic carries which table, and which tables a topic and a
// node accept: the one rule set the agent and the simulator both run (it
// used to be written twice, and the simulator's copy lacked network-hosts).
// Cluster tables share one topic; each overlay network's endpoint table has
// its own, to which only hosts with endpoints on that network subscribe
// (networkdb's per-network groups).
// network-hosts: key `<network id>|<node id>`, present while that host has endpoints on the
// network; it is how any member can tell whether a network is still in use.
export const CLUSTER_TABLES = ['networks', 'services', 'allocations', 'network-hosts'] as const;
export const CLUSTER_TABLE_TOPIC = 'weft/tables/1';
/** Member records and the join token (agent/cluster/cluster-gossip.ts; the simulator's roster gossip). */
export const CLUSTER_RECORD_TOPIC = 'weft/cluster/1';
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

/** Is `topic` one of ours (the cluster topic or a network's)? */
export function isTableTopic(topic: string): boolean {
  return topic === CLUSTER_TABLE_TOPIC || networkOfTopic(topic) !== undefined;
}

/**
 * A topic carries only its own tables: the cluster topic the cluster tables,
 * a network's topic that network's endpoints. Anything else on it (an
 * endpoint entry on the cluster topic, say) is refused, so a node cannot
 * reach hosts outside a network by publishing where they listen.
 */
export function topicAccepts(topic: string, table: string): boolean {
  const network = networkOfTopic(topic);
  if (network === undefined) return topic === CLUSTER_TABLE_TOPIC && isClusterTable(table);
  return networkOfTable(table) === network;
}

/** Networks and services belong to the cluster, not to the host that created them: never hidden with it. */
export function isClusterScoped(table: string): boolean {
  return table === 'networks' || table === 'services';
}
