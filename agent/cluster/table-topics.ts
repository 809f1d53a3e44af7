// The topic rules live with the node core (controlplane/node/topics.ts);
// this path stays for the overlay and service plane, which import it.
export { CLUSTER_TABLES, CLUSTER_TABLE_TOPIC, endpointsTable, networkOfTable, networkTopic, networkOfTopic, topicOfTable, isClusterTable } from '../../controlplane/node/topics.ts';
