// When this node runs /weft/sync/1 (state-sync.ts), and with whom: on every
// connection it dials, every PERIODIC_SYNC_MS with a random connected peer
// (state gossip missed converges even on a quiet cluster), with a member back
// from dead, and with a host already on a network this node just joined.
// Only the periodic round is a digest round: the others follow a change, so
// the full round is what they would end up running anyway.
import type { Connection } from '@libp2p/interface';
import type { WeftLibp2p } from './libp2p-node.ts';
import { registerSync, syncWith, type SyncHandlers, type SyncMode } from './state-sync.ts';
import { newestOpenConnection } from './stale-connections.ts';
import { networkTopic } from '../../controlplane/node/topics.ts';

const PERIODIC_SYNC_MS = 30_000;

export class SyncScheduler {
  readonly #libp2p: WeftLibp2p;
  readonly #handlers: SyncHandlers;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(libp2p: WeftLibp2p, handlers: SyncHandlers) {
    this.#libp2p = libp2p;
    this.#handlers = handlers;
  }

  /** Answers peers' syncs; call before libp2p starts. */
  async register(): Promise<void> {
    await registerSync(this.#libp2p, this.#handlers);
  }

  start(): void {
    this.#timer = setInterval(() => this.withRandomPeer(), PERIODIC_SYNC_MS);
  }

  /** The dialing side of a new connection opens the sync. */
  connectionOpened(connection: Connection): void {
    if (connection.direction === 'outbound') this.#run(connection);
  }

  /** Anti-entropy with a host already on the network (a subscriber of its topic), after joining it. */
  withNetwork(networkId: string): void {
    const subscribers = new Set(this.#libp2p.services.pubsub.getSubscribers(networkTopic(networkId)).map((p) => p.toString()));
    this.#runOne(this.#libp2p.getConnections().filter((c) => c.status === 'open' && subscribers.has(c.remotePeer.toString())));
  }

  /**
   * A member back from dead may have written entries we never got (its
   * gossip went nowhere while we held it dead, or reached us over a path
   * that has since broken): sync with it now rather than at the next
   * periodic round. Without an open connection there is nothing to do: the
   * dialer makes one, and every new connection starts with a sync.
   */
  withPeer(peerId: string): void {
    const newest = newestOpenConnection(this.#libp2p, peerId);
    if (newest) this.#run(newest);
  }

  withRandomPeer(): void {
    this.#runOne(this.#libp2p.getConnections().filter((c) => c.status === 'open'), 'digest');
  }

  #runOne(candidates: Connection[], mode: SyncMode = 'full'): void {
    const pick = candidates[Math.floor(Math.random() * candidates.length)];
    if (pick) this.#run(pick, mode);
  }

  #run(connection: Connection, mode: SyncMode = 'full'): void {
    if (this.#stopped) return;
    void syncWith(connection, this.#handlers, mode).then((outcome) => {
      // The hashes differ: exchange what differs now, not at the next periodic round.
      if (outcome === 'differs' && !this.#stopped && connection.status === 'open') void syncWith(connection, this.#handlers, 'full');
    });
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer) clearInterval(this.#timer);
  }
}
