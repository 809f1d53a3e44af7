// /weft/sync/1, run by the dialing side on every new connection and
// periodically: the cluster snapshot (roster, token, liveness) and a digest
// exchange of the replicated tables, in three messages on one stream:
//   open   (initiator): roster summary, token, liveness + table digest
//   answer (responder): the member records and table buckets the initiator lacks, its own summary
//   close  (initiator): the member records and table entries the responder lacks
// Member records carry certificates (~800 bytes), so only differing ones travel.
// A periodic round with a peer that speaks /weft/sync/2 is a digest round
// (controlplane/cluster/sync-digest.ts): open and answer carry two 16-byte
// hashes instead of the roster summary and the liveness snapshot, and the
// initiator follows with a full round only when a hash differs. A peer on the
// old agent offers only /weft/sync/1 and gets the full round, as before.
// The responder merges before answering, so one exchange converges both sides
// (answering first can leave a healed partition split, as the simulator showed).
import { lpStream } from '@libp2p/utils';
import type { Connection, Stream } from '@libp2p/interface';
import type { Digest, SyncReply, WireEntry } from '../../controlplane/tables/index.ts';
import { decodeSnapshot, decodeSyncClose, encodeSnapshot, encodeSyncClose, type Snapshot } from '../wire/cluster-codec.ts';
import type { MemberRecord } from '../../controlplane/cluster/roster.ts';
import {
  MAX_TABLE_FRAME_BYTES, decodeDigest, decodeSyncAnswer, decodeSyncFinish, decodeSyncOpen, decodeSyncReply,
  encodeDigest, encodeSyncAnswer, encodeSyncFinish, encodeSyncOpen, encodeSyncReply,
} from '../wire/tables-codec.ts';
import type { WeftLibp2p } from './libp2p-node.ts';

/** The full round only: what agents before the digest round speak. */
export const SYNC_PROTOCOL = '/weft/sync/1';
/** Full rounds and digest rounds; offered first, /weft/sync/1 is the fallback. */
export const DIGEST_SYNC_PROTOCOL = '/weft/sync/2';
/** full: on connect, after a member comes back, after a digest round found a difference. digest: periodic. */
export type SyncMode = 'full' | 'digest';
/** differs: a digest round found the peer's roster or liveness view unlike ours (run a full round). */
export type SyncOutcome = 'done' | 'differs' | 'failed';
const SYNC_TIMEOUT_MS = 15_000;

export interface SyncHandlers {
  /** Our state with the roster only summarised, or (digest round) only hashed. */
  opening(mode: SyncMode): Snapshot;
  /** Our state with the full records the peer (by its summary) lacks; our digests alone if it sent digests only. */
  answerTo(remote: Snapshot): Snapshot;
  /** Records the peer lacks by its summary (none when it sent digests only). */
  recordsFor(remote: Snapshot): MemberRecord[];
  /** Whether a peer's digests match our roster and liveness view now. */
  inSync(remote: Snapshot): boolean;
  ingest(remote: Snapshot, fromPeer: string): Promise<void>;
  nodeIdOfPeer(peerId: string): string | undefined;
  digest(): Digest;
  answer(digest: Digest): SyncReply;
  /** `reply.dropped`: entries of the reply that failed the entry schema (counted; the rest is applied). */
  complete(peerNodeId: string, digest: Digest, reply: SyncReply & { dropped: number }): WireEntry[];
  /** `dropped`: entries of the message that failed the entry schema (counted; the rest is applied). */
  finish(peerNodeId: string, entries: WireEntry[], dropped: number): void;
  onError(error: Error, fromPeer: string): void;
  /** A round finished on both sides of this node (counted for metrics and readiness). */
  onComplete?(role: 'initiator' | 'responder', peer: string): void;
}

export async function registerSync(node: WeftLibp2p, handlers: SyncHandlers): Promise<void> {
  // One responder for both: it answers a digest opening with digests, anything else in full.
  await node.handle([DIGEST_SYNC_PROTOCOL, SYNC_PROTOCOL], async (stream: Stream, connection: Connection) => {
    const peer = connection.remotePeer.toString();
    try {
      const signal = AbortSignal.timeout(SYNC_TIMEOUT_MS);
      const lp = lpStream(stream, { maxDataLength: MAX_TABLE_FRAME_BYTES });
      const open = decodeSyncOpen((await lp.read({ signal })).subarray());
      const remote = decodeSnapshot(open.snapshot);
      await handlers.ingest(remote, peer);
      const peerNodeId = handlers.nodeIdOfPeer(peer);
      if (!peerNodeId) throw new Error('sync from a peer that is not an admitted member');
      const reply = handlers.answer(decodeDigest(open.body));
      await lp.write(encodeSyncAnswer({ snapshot: encodeSnapshot(handlers.answerTo(remote)), body: encodeSyncReply(reply) }), { signal });
      const close = decodeSyncClose((await lp.read({ signal })).subarray());
      await handlers.ingest({ members: close.members }, peer);
      const finish = decodeSyncFinish(close.finish);
      handlers.finish(peerNodeId, finish.entries, finish.dropped);
      await stream.close({ signal });
      handlers.onComplete?.('responder', peer);
    } catch (error) {
      stream.abort(error as Error);
      handlers.onError(error as Error, peer);
    }
  });
}

/** One round as initiator. A digest round falls back to full when the peer speaks only /weft/sync/1. */
export async function syncWith(connection: Connection, handlers: SyncHandlers, wanted: SyncMode = 'full'): Promise<SyncOutcome> {
  const peer = connection.remotePeer.toString();
  const signal = AbortSignal.timeout(SYNC_TIMEOUT_MS);
  let stream: Stream | undefined;
  try {
    stream = await connection.newStream([DIGEST_SYNC_PROTOCOL, SYNC_PROTOCOL], { signal });
    const mode: SyncMode = stream.protocol === DIGEST_SYNC_PROTOCOL ? wanted : 'full';
    const lp = lpStream(stream, { maxDataLength: MAX_TABLE_FRAME_BYTES });
    const digest = handlers.digest();
    await lp.write(encodeSyncOpen({ snapshot: encodeSnapshot(handlers.opening(mode)), body: encodeDigest(digest) }), { signal });
    const answer = decodeSyncAnswer((await lp.read({ signal })).subarray());
    const remote = decodeSnapshot(answer.snapshot);
    await handlers.ingest(remote, peer);
    const peerNodeId = handlers.nodeIdOfPeer(peer);
    if (!peerNodeId) throw new Error('sync with a peer that is not an admitted member');
    const missing = handlers.complete(peerNodeId, digest, decodeSyncReply(answer.body));
    await lp.write(encodeSyncClose({ finish: encodeSyncFinish(missing), members: handlers.recordsFor(remote) }), { signal });
    await stream.close({ signal });
    handlers.onComplete?.('initiator', peer);
    return mode === 'digest' && !handlers.inSync(remote) ? 'differs' : 'done';
  } catch (error) {
    stream?.abort(error as Error);
    handlers.onError(error as Error, peer);
    return 'failed';
  }
}
