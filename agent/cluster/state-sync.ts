// /weft/sync/1: on every new connection the dialing side sends its full cluster
// snapshot and receives the other's, so a host that was away (restart,
// partition) catches up at once instead of waiting for the next gossip. The
// cluster roster is small; per-table digests arrive with the replicated tables.
import { lpStream } from '@libp2p/utils';
import type { Connection, Stream } from '@libp2p/interface';
import { MAX_FRAME_BYTES, decodeSnapshot, encodeSnapshot, type Snapshot } from '../wire/cluster-codec.ts';
import type { WeftLibp2p } from './libp2p-node.ts';

export const SYNC_PROTOCOL = '/weft/sync/1';
const SYNC_TIMEOUT_MS = 10_000;

export interface SyncHandlers {
  snapshot(): Snapshot;
  ingest(remote: Snapshot, fromPeer: string): Promise<void>;
  onError(error: Error, fromPeer: string): void;
}

export async function registerSync(node: WeftLibp2p, handlers: SyncHandlers): Promise<void> {
  await node.handle(SYNC_PROTOCOL, async (stream: Stream, connection: Connection) => {
    const peer = connection.remotePeer.toString();
    try {
      const lp = lpStream(stream, { maxDataLength: MAX_FRAME_BYTES });
      const signal = AbortSignal.timeout(SYNC_TIMEOUT_MS);
      const remote = decodeSnapshot((await lp.read({ signal })).subarray());
      // Merge before answering: the reply then carries the union, so one
      // exchange converges both sides (answering first can leave a healed
      // partition split, as the simulator showed).
      await handlers.ingest(remote, peer);
      await lp.write(encodeSnapshot(handlers.snapshot()), { signal });
      await stream.close({ signal });
    } catch (error) {
      stream.abort(error as Error);
      handlers.onError(error as Error, peer);
    }
  });
}

export async function syncWith(connection: Connection, handlers: SyncHandlers): Promise<void> {
  const peer = connection.remotePeer.toString();
  const signal = AbortSignal.timeout(SYNC_TIMEOUT_MS);
  let stream: Stream | undefined;
  try {
    stream = await connection.newStream(SYNC_PROTOCOL, { signal });
    const lp = lpStream(stream, { maxDataLength: MAX_FRAME_BYTES });
    await lp.write(encodeSnapshot(handlers.snapshot()), { signal });
    const remote = decodeSnapshot((await lp.read({ signal })).subarray());
    await stream.close({ signal });
    await handlers.ingest(remote, peer);
  } catch (error) {
    stream?.abort(error as Error);
    handlers.onError(error as Error, peer);
  }
}
