// The cluster gossip topic. Outgoing records are coalesced for a few
// milliseconds into one envelope because every gossipsub message is signed
// (~0.5 ms each); incoming messages are accepted only from admitted peers,
// which is how a revoked node loses the ability to publish.
import { TopicValidatorResult, type Message } from '@libp2p/gossipsub';
import type { PeerId } from '@libp2p/interface';
import type { MemberRecord } from '../../controlplane/cluster/roster.ts';
import type { TokenRecord } from '../../controlplane/cluster/token-record.ts';
import { decodeEnvelope, encodeEnvelope, type Envelope } from '../wire/cluster-codec.ts';
import { CLUSTER_RECORD_TOPIC } from '../../controlplane/node/topics.ts';
import type { WeftLibp2p } from './libp2p-node.ts';

export const CLUSTER_TOPIC = CLUSTER_RECORD_TOPIC;
const COALESCE_MS = 5;

export interface GossipHandlers {
  isAdmitted(peerId: PeerId): boolean;
  ingest(envelope: Envelope, fromPeer: string): Promise<void>;
  onError(error: Error, fromPeer: string): void;
}

export class ClusterGossip {
  readonly #node: WeftLibp2p;
  readonly #pendingMembers = new Map<string, MemberRecord>();
  #pendingToken: TokenRecord | undefined;
  #timer: NodeJS.Timeout | undefined;
  #flushed: Promise<void> = Promise.resolve();

  constructor(node: WeftLibp2p, handlers: GossipHandlers) {
    this.#node = node;
    const pubsub = node.services.pubsub;
    pubsub.topicValidators.set(CLUSTER_TOPIC, (_peer, message: Message) =>
      message.type === 'signed' && handlers.isAdmitted(message.from) ? TopicValidatorResult.Accept : TopicValidatorResult.Reject,
    );
    pubsub.addEventListener('message', (event) => {
      const message = event.detail;
      if (message.topic !== CLUSTER_TOPIC || message.type !== 'signed') return;
      const from = message.from.toString();
      try {
        handlers.ingest(decodeEnvelope(message.data), from).catch((error: Error) => handlers.onError(error, from));
      } catch (error) {
        handlers.onError(error as Error, from);
      }
    });
    pubsub.subscribe(CLUSTER_TOPIC);
  }

  publishMember(record: MemberRecord): void {
    this.#pendingMembers.set(record.nodeId, record);
    this.#schedule();
  }

  publishToken(token: TokenRecord): void {
    this.#pendingToken = token;
    this.#schedule();
  }

  /** Resolves once everything queued so far has been handed to gossipsub. */
  async flush(): Promise<void> {
    if (this.#timer) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
      this.#send();
    }
    await this.#flushed;
  }

  #schedule(): void {
    this.#timer ??= setTimeout(() => {
      this.#timer = undefined;
      this.#send();
    }, COALESCE_MS);
  }

  #send(): void {
    const envelope: Envelope = { members: [...this.#pendingMembers.values()], token: this.#pendingToken };
    this.#pendingMembers.clear();
    this.#pendingToken = undefined;
    if (envelope.members.length === 0 && !envelope.token) return;
    this.#flushed = this.#node.services.pubsub
      .publish(CLUSTER_TOPIC, encodeEnvelope(envelope))
      .then(() => undefined)
      .catch(() => undefined); // peers catch up through /weft/sync on the next connection
  }

  stop(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#node.services.pubsub.unsubscribe(CLUSTER_TOPIC);
  }
}
