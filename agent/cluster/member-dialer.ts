// Keeps a connection to every active member: dials those without one every
// second, watches connections open and close (aborting superseded ones),
// drops a dead member's (likely stalled) connections so fresh ones are made,
// and hangs up on members that left or were removed.
import { multiaddr } from '@multiformats/multiaddr';
import { peerIdFromString } from '@libp2p/peer-id';
import type { Logger } from 'pino';
import type { MemberRecord } from '../../controlplane/cluster/roster.ts';
import type { WeftLibp2p } from './libp2p-node.ts';
import type { Connection } from '@libp2p/interface';
import { abortConnections, abortSuperseded } from './stale-connections.ts';
import { SampledLog } from '../util/sampled-log.ts';

// A member with no connection is re-dialled every second, and a TCP connect
// is given up after a second: the kernel would retransmit an unanswered SYN
// only after 1, 3, 7 s, so waiting longer means a healed link goes unnoticed
// for seconds. The rest of the dial (PSK, Noise, yamux) gets DIAL_TIMEOUT_MS.
const DIAL_INTERVAL_MS = 1_000;
export const CONNECT_TIMEOUT_MS = 1_000;
const DIAL_TIMEOUT_MS = 5_000;
// An unreachable member is redialled every second: the first few failures
// per minute are logged in full (warn), the rest summed up once a minute.
const DIAL_FAILURE_LOG = { burst: 3, intervalMs: 60_000 };

export interface MemberDialerOptions {
  libp2p: () => WeftLibp2p;
  selfId: string;
  members: () => readonly MemberRecord[];
  logger: Logger;
}

export class MemberDialer {
  readonly #options: MemberDialerOptions;
  readonly #dialing = new Set<string>();
  readonly #dialFailures: SampledLog;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(options: MemberDialerOptions) {
    this.#options = options;
    this.#dialFailures = new SampledLog(options.logger, DIAL_FAILURE_LOG, { message: 'could not reach a member; retrying every second', summary: 'failed dials', subjectField: 'node' });
  }

  start(): void {
    this.#timer = setInterval(() => this.dialMembers(), DIAL_INTERVAL_MS);
    this.dialMembers();
  }

  dialMembers(): void {
    if (this.#stopped || this.#timer === undefined) return;
    const libp2p = this.#options.libp2p();
    const connected = new Set(libp2p.getPeers().map((p) => p.toString()));
    for (const member of this.#options.members()) {
      if (member.status !== 'active' || member.nodeId === this.#options.selfId) continue;
      if (connected.has(member.peerId) || this.#dialing.has(member.peerId)) continue;
      this.#dialing.add(member.peerId);
      const address = multiaddr(`/ip4/${member.address}/tcp/${member.gossipPort}/p2p/${member.peerId}`);
      const startedAt = Date.now();
      libp2p
        .dial(address, { signal: AbortSignal.timeout(DIAL_TIMEOUT_MS) })
        .catch((error: Error) => {
          if (!this.#stopped) this.#dialFailures.event(member.nodeId, error.message);
        })
        .finally(() => {
          this.#dialing.delete(member.peerId);
          // A dial that waited out its connect timeout is retried at once, so
          // a SYN goes out every second while the member is unreachable;
          // quick failures (connection refused) wait for the interval.
          if (Date.now() - startedAt >= CONNECT_TIMEOUT_MS) this.dialMembers();
        });
    }
  }

  /**
   * Logs connections as they open and close, aborts the ones a new
   * connection supersedes (stale-connections.ts) and hands each new one on.
   */
  watch(opened: (connection: Connection) => void, nodeIdOfPeer: (peerId: string) => string | undefined): void {
    const libp2p = this.#options.libp2p();
    libp2p.addEventListener('connection:open', (event) => {
      const connection: Connection = event.detail;
      const node = nodeIdOfPeer(connection.remotePeer.toString());
      const superseded = abortSuperseded(libp2p, connection);
      this.#options.logger.info({ node, direction: connection.direction, superseded }, 'connection opened');
      opened(connection);
    });
    libp2p.addEventListener('connection:close', (event) => {
      const connection: Connection = event.detail;
      this.#options.logger.info({ node: nodeIdOfPeer(connection.remotePeer.toString()), direction: connection.direction }, 'connection closed');
    });
  }

  /** A dead member's connections are likely stalled (see stale-connections.ts): drop them so the dialer makes fresh ones. */
  dropConnectionsTo(record: MemberRecord): void {
    if (this.#stopped) return;
    const aborted = abortConnections(this.#options.libp2p(), record.peerId, 'member declared dead by failure detection');
    if (aborted > 0) this.#options.logger.info({ node: record.nodeId, aborted }, 'dropped the connections of a dead member; redialling');
  }

  async disconnect(peerId: string): Promise<void> {
    try {
      await this.#options.libp2p().hangUp(peerIdFromString(peerId));
    } catch {
      // not connected: nothing to close
    }
  }

  stop(): void {
    this.#dialFailures.flush();
    this.#stopped = true;
    if (this.#timer) clearInterval(this.#timer);
  }
}
