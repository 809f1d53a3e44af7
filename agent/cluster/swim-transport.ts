// Carries SWIM packets over libp2p: one long-lived stream per peer and
// direction on the existing (PSK + Noise, certified) connection, opened on
// the first packet and reopened after it breaks. A stream per packet cost a
// stream open, a protocol negotiation and a close for every ping and ack:
// ~8 encrypted frames instead of one, most of an idle agent's wire traffic.
// SWIM wants datagram semantics, so a packet that cannot go out at once (no
// stream yet and the dial fails, a stream under backpressure) is dropped: a
// lost packet is what SWIM is built for, a queue of stale probes is not.
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
        await receivePackets(stream, peer, receiver);
      } catch (error) {
        stream.abort(error as Error);
        receiver.onError(error as Error, peer);
      }
    },
    // One stream per peer now; the headroom covers agents of the previous
    // version, which open a stream per packet, in bursts from many peers.
    { maxInboundStreams: 256 },
  );
}

/** Reads packets until the peer closes the stream (an older agent closes after one). */
async function receivePackets(stream: Stream, peer: string, receiver: SwimReceiver): Promise<void> {
  const lp = lpStream(stream, { maxDataLength: MAX_PACKET_BYTES });
  for (;;) {
    let frame;
    try {
      frame = await lp.read();
    } catch (error) {
      if (stream.readStatus !== 'readable' && (error as Error).name === 'UnexpectedEOFError') return; // closed between packets
      throw error;
    }
    // Checked per packet, not per stream: a member revoked meanwhile is refused at once.
    const from = receiver.nodeIdOfPeer(peer);
    if (!from) throw new Error('SWIM packet from a peer that is not an admitted member');
    receiver.receive(from, decodeSwim(frame.subarray()));
  }
}

interface Outbound {
  stream: Stream;
  lp: ReturnType<typeof lpStream>;
}

/** Each libp2p node's outbound SWIM streams, by peer address. */
const outboundByNode = new WeakMap<WeftLibp2p, Map<string, Promise<Outbound>>>();

export async function sendSwim(node: WeftLibp2p, address: string, message: SwimMessage): Promise<void> {
  const out = await outboundStream(node, address);
  if (out.stream.writableNeedsDrain) throw new Error('SWIM stream under backpressure: packet dropped');
  try {
    await out.lp.write(encodeSwim(message), { signal: AbortSignal.timeout(SEND_TIMEOUT_MS) });
  } catch (error) {
    forget(node, address, out);
    out.stream.abort(error as Error);
    throw error;
  }
}

async function outboundStream(node: WeftLibp2p, address: string): Promise<Outbound> {
  let streams = outboundByNode.get(node);
  if (streams === undefined) outboundByNode.set(node, (streams = new Map()));
  const cached = streams.get(address);
  if (cached !== undefined) {
    const out = await cached;
    if (out.stream.status === 'open' && out.stream.writeStatus === 'writable' && out.stream.remoteWriteStatus === 'writable') return out;
    forget(node, address, out);
  }
  const opening = openOutbound(node, address);
  streams.set(address, opening);
  opening.catch(() => {
    if (streams.get(address) === opening) streams.delete(address);
  });
  return opening;
}

async function openOutbound(node: WeftLibp2p, address: string): Promise<Outbound> {
  const stream = await node.dialProtocol(multiaddr(address), SWIM_PROTOCOL, { signal: AbortSignal.timeout(SEND_TIMEOUT_MS) });
  const out: Outbound = { stream, lp: lpStream(stream, { maxDataLength: MAX_PACKET_BYTES }) };
  // The peer closing its end (an older agent after each packet, a restart, a
  // closed connection) retires the stream; the next packet opens a new one.
  const retire = (): void => forget(node, address, out);
  stream.addEventListener('close', retire, { once: true });
  stream.addEventListener('remoteCloseWrite', retire, { once: true });
  return out;
}

function forget(node: WeftLibp2p, address: string, out: Outbound): void {
  const streams = outboundByNode.get(node);
  const current = streams?.get(address);
  if (current === undefined) return;
  // Only drop the entry if it still holds this stream, not a newer one.
  void current.then((c) => {
    if (c === out && streams?.get(address) === current) streams.delete(address);
  }, () => undefined);
}
