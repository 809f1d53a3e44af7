// Gossip messages and payload bytes per topic family, in and out, for
// metrics. Every publisher (cluster records, table batches) goes through the
// one gossipsub service, so counting at its publish() and at its message
// event sees all of it without touching the publishers. Topics are grouped
// by family: one topic per overlay network would make a label value per
// network, which Prometheus pays for in series (low cardinality).
import type { GossipSub } from '@libp2p/gossipsub';
import { CLUSTER_TOPIC } from './cluster-gossip.ts';
import { CLUSTER_TABLE_TOPIC, networkOfTopic } from '../../controlplane/node/topics.ts';

export type TopicFamily = 'cluster' | 'tables' | 'network' | 'other';
export type GossipDirection = 'in' | 'out';
type Tally = Record<GossipDirection, Record<TopicFamily, number>>;

export class GossipTraffic {
  readonly messages: Tally = zeroTally();
  readonly bytes: Tally = zeroTally();

  count(direction: GossipDirection, topic: string, bytes: number): void {
    const family = topicFamily(topic);
    this.messages[direction][family] += 1;
    this.bytes[direction][family] += bytes;
  }
}

export function topicFamily(topic: string): TopicFamily {
  if (topic === CLUSTER_TOPIC) return 'cluster';
  if (topic === CLUSTER_TABLE_TOPIC) return 'tables';
  return networkOfTopic(topic) === undefined ? 'other' : 'network';
}

/** Starts counting a node's gossip; published messages count once, whatever the number of peers they reach. */
export function countGossipTraffic(pubsub: GossipSub): GossipTraffic {
  const traffic = new GossipTraffic();
  pubsub.addEventListener('message', (event) => traffic.count('in', event.detail.topic, event.detail.data.length));
  const publish = pubsub.publish.bind(pubsub);
  pubsub.publish = (topic: string, data?: Uint8Array) => {
    traffic.count('out', topic, data?.length ?? 0);
    return publish(topic, data);
  };
  return traffic;
}

function zeroTally(): Tally {
  const zero = (): Record<TopicFamily, number> => ({ cluster: 0, tables: 0, network: 0, other: 0 });
  return { in: zero(), out: zero() };
}
