// Carries SWIM packets over libp2p: one short stream per packet on the
// existing (PSK + Noise, certified) connection to the peer, dialled on demand.
// A lost or failed send is just a lost packet: SWIM is built for that.
import { lpStream } from '@libp2p/utils';
import { multiaddr } from '@multiformats/multiaddr';
import type { Connection, Stream } from '@libp2p/interface';
import type { SwimMessage } from '../../controlplane/membership/index.ts';
import { decodeSwim, encodeSwim } from '../wire/swim-codec.ts';
import type { WeftLibp2p } from './libp2p-node.ts';

export const SWIM_PROTOCOL = '/weft/swim/1';
const SEND_TIMEOUT_MS = 2_000;
const MAX_PACKET_BYTES = 64 * 1024;

/** A member's SWIM address: where to dial it, peer ID included so the dial is authenticated. */
export function swimAddress(ip: string, port: number, peerId: string): string {
  return `/ip4/${ip}/tcp/${port}/p2p/${peerId}`;
}

export interface SwimReceiver {
  /** Returns the node ID of an admitted peer, undefined for anyone else. */
  nodeIdOfPeer(peerId: string): string | undefined;
  receive(fromNodeId: string, message: SwimMessage): void;
  onError(error: Error, peer: string): void;
}

export async function registerSwim(node: WeftLibp2p, receiver: SwimReceiver): Promise<void> {
  await node.handle(
    SWIM_PROTOCOL,
    async (stream: Stream, connection: Connection) => {
      const peer = connection.remotePeer.toString();
      try {
        const from = receiver.nodeIdOfPeer(peer);
        if (!from) throw new Error('SWIM packet from a peer that is not an admitted member');
        const lp = lpStream(stream, { maxDataLength: MAX_PACKET_BYTES });
        const frame = await lp.read({ signal: AbortSignal.timeout(SEND_TIMEOUT_MS) });
        await stream.close().catch(() => undefined);
        receiver.receive(from, decodeSwim(frame.subarray()));
      } catch (error) {
        stream.abort(error as Error);
        receiver.onError(error as Error, peer);
      }
    },
    // Probes come in bursts from many peers at once; the default (32) is fine
    // per connection, but packets must never be refused for lack of slots.
    { maxInboundStreams: 256 },
  );
}

export async function sendSwim(node: WeftLibp2p, address: string, message: SwimMessage): Promise<void> {
  const signal = AbortSignal.timeout(SEND_TIMEOUT_MS);
  const stream = await node.dialProtocol(multiaddr(address), SWIM_PROTOCOL, { signal });
  try {
    await lpStream(stream, { maxDataLength: MAX_PACKET_BYTES }).write(encodeSwim(message), { signal });
    await stream.close({ signal });
  } catch (error) {
    stream.abort(error as Error);
    throw error;
  }
}
