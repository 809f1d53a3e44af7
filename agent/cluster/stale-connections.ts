// Connections that outlived the path under them. When a host's link is cut,
// its TCP connections are not closed: the kernel keeps retransmitting with
// exponential backoff (0.2, 0.4, ... 12.8, 25.6 s), so after a 20 s cut the
// next retransmission, and with it every SWIM packet, sync and gossip queued
// on that connection, can come many seconds after the link is back. libp2p
// keeps reusing such a connection instead of dialling, so nothing heals until
// TCP does. Two rules cut that short:
//   - a member failure detection declares dead: abort its connections at
//     once (a graceful close would wait on the stalled socket), so the dialer
//     makes a fresh one as soon as the path works again;
//   - a new connection to a peer that already has a much older one: the peer
//     dialled because it holds no connection to us, so the old one is dead on
//     its side; abort it, or our SWIM packets keep going into it.
import type { Connection } from '@libp2p/interface';
import { peerIdFromString } from '@libp2p/peer-id';
import type { WeftLibp2p } from './libp2p-node.ts';

/** The part of the libp2p node these rules use (unit tests pass a stand-in). */
export type ConnectionSource = Pick<WeftLibp2p, 'getConnections'>;

/**
 * Both sides may dial each other at the same moment; those two connections
 * open within a dial of each other and both work, so only a connection this
 * much older than the new one counts as superseded.
 */
export const SUPERSEDED_AFTER_MS = 5_000;

/** Aborts every connection to `peerId`; returns how many there were. */
export function abortConnections(node: ConnectionSource, peerId: string, reason: string): number {
  const connections = node.getConnections(peerIdFromString(peerId));
  for (const connection of connections) connection.abort(new Error(reason));
  return connections.length;
}

/** Aborts the connections to the same peer that `fresh` supersedes; returns how many. */
export function abortSuperseded(node: ConnectionSource, fresh: Connection): number {
  const older = node
    .getConnections(fresh.remotePeer)
    .filter((c) => c.id !== fresh.id && fresh.timeline.open - c.timeline.open > SUPERSEDED_AFTER_MS);
  for (const connection of older) connection.abort(new Error('superseded by a newer connection from the same peer'));
  return older.length;
}

/** The most recently opened of the open connections to `peerId`: the one least likely stalled. */
export function newestOpenConnection(node: ConnectionSource, peerId: string): Connection | undefined {
  const open = node.getConnections(peerIdFromString(peerId)).filter((c) => c.status === 'open');
  return open.sort((a, b) => b.timeline.open - a.timeline.open)[0];
}
