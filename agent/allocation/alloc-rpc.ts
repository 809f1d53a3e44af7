// /weft/alloc/1: a node without free space asks an owner for a share, a node
// freeing a value it does not own forwards the free to the owner, and a
// leaving node hands its ranges to a member, and the reclaimer asks every
// member for its current rings before taking over a gone node's ranges. One request and one reply per
// stream, length-prefixed protobuf, zod-checked, over the certified libp2p
// connection; only admitted members are answered, and only on their own behalf.
import { lpStream } from '@libp2p/utils';
import { multiaddr } from '@multiformats/multiaddr';
import type { Connection, Stream } from '@libp2p/interface';
import type { Donation, FreeReply, FreeRequest, RingSyncRequest, SpaceReply, SpaceRequest } from '../../controlplane/allocation/index.ts';
import {
  decodeAllocCall, decodeFreeReply, decodeHandoverReply, decodeRingSyncReply, decodeSpaceReply,
  encodeAllocCall, encodeFreeReply, encodeHandoverReply, encodeRingSyncReply, encodeSpaceReply,
  type AllocCall, type HandoverReply, type RingSyncReply,
} from '../wire/allocation-codec.ts';
import type { WeftLibp2p } from '../cluster/libp2p-node.ts';

export const ALLOC_PROTOCOL = '/weft/alloc/1';
const RPC_TIMEOUT_MS = 10_000;
const MAX_FRAME_BYTES = 8 * 1024 * 1024;
// Allocations of many spaces may be in flight between two nodes at once.
const MAX_STREAMS = 64;

export type AllocRpcNode = Pick<WeftLibp2p, 'handle' | 'unhandle' | 'dialProtocol'>;

export interface AllocRpcHandlers {
  selfId: string;
  /** Node ID of an admitted member's peer ID; undefined for anyone else. */
  nodeIdOfPeer(peerId: string): string | undefined;
  /** Each is one synchronous allocator step, persisted before it returns. */
  onSpace(from: string, request: SpaceRequest): SpaceReply;
  onFree(from: string, request: FreeRequest): FreeReply;
  onHandover(from: string, donation: Donation): HandoverReply;
  onRingSync(from: string, request: RingSyncRequest): RingSyncReply;
  onError(error: Error, peer: string): void;
}

/** A dial or an exchange that failed (a malformed reply is a FrameError instead). */
export class AllocRpcFailure extends Error {
  override name = 'AllocRpcFailure';
}

export async function serveAllocRpc(node: AllocRpcNode, handlers: AllocRpcHandlers): Promise<void> {
  await node.handle(
    ALLOC_PROTOCOL,
    async (stream: Stream, connection: Connection) => {
      const peer = connection.remotePeer.toString();
      try {
        const from = handlers.nodeIdOfPeer(peer);
        if (!from) throw new Error('allocation request from a peer that is not an admitted member');
        const signal = AbortSignal.timeout(RPC_TIMEOUT_MS);
        const lp = lpStream(stream, { maxDataLength: MAX_FRAME_BYTES });
        const call = decodeAllocCall((await lp.read({ signal })).subarray());
        await lp.write(answer(handlers, from, call), { signal });
        await stream.close({ signal });
      } catch (error) {
        stream.abort(error as Error);
        handlers.onError(error as Error, peer);
      }
    },
    { maxInboundStreams: MAX_STREAMS },
  );
}

function answer(handlers: AllocRpcHandlers, from: string, call: AllocCall): Uint8Array {
  // A peer may only ask on its own behalf, and only this node.
  if (call.request.from !== from) throw new Error(`allocation request from ${from} claims to come from ${call.request.from}`);
  if (call.request.to !== handlers.selfId) throw new Error(`allocation request for ${call.request.to} reached ${handlers.selfId}`);
  switch (call.kind) {
    case 'space':
      return encodeSpaceReply(handlers.onSpace(from, call.request));
    case 'free':
      return encodeFreeReply(handlers.onFree(from, call.request));
    case 'handover': {
      // Never abort a handover for a reason we can state: an aborted stream
      // leaves the sender unsure whether we took its ranges.
      let reply: HandoverReply;
      try {
        reply = handlers.onHandover(from, call.request);
      } catch (error) {
        reply = { accepted: false, reason: (error as Error).message };
      }
      return encodeHandoverReply(reply);
    }
    case 'ringSync':
      return encodeRingSyncReply(handlers.onRingSync(from, call.request));
  }
}

/**
 * Dials `address` (a multiaddr with /p2p/), then builds the request: a
 * handover changes the sender's state only once the peer is connected.
 * `build` returning undefined cancels the exchange.
 */
async function exchange(node: AllocRpcNode, address: string, build: () => AllocCall | undefined): Promise<Uint8Array | undefined> {
  const signal = AbortSignal.timeout(RPC_TIMEOUT_MS);
  let stream: Stream;
  try {
    stream = await node.dialProtocol(multiaddr(address), ALLOC_PROTOCOL, { signal });
  } catch (error) {
    throw new AllocRpcFailure(`could not open ${ALLOC_PROTOCOL} to ${address}: ${(error as Error).message}`);
  }
  let call: AllocCall | undefined;
  try {
    call = build();
  } catch (error) {
    stream.abort(error as Error);
    throw error;
  }
  if (call === undefined) {
    stream.abort(new Error('cancelled'));
    return undefined;
  }
  try {
    const lp = lpStream(stream, { maxDataLength: MAX_FRAME_BYTES });
    await lp.write(encodeAllocCall(call), { signal });
    const reply = (await lp.read({ signal })).subarray();
    await stream.close({ signal }).catch(() => undefined);
    return reply;
  } catch (error) {
    stream.abort(error as Error);
    throw new AllocRpcFailure(`${ALLOC_PROTOCOL} exchange with ${address} failed: ${(error as Error).message}`);
  }
}

export class AllocRpcClient {
  readonly #node: AllocRpcNode;

  constructor(node: AllocRpcNode) {
    this.#node = node;
  }

  async space(address: string, request: SpaceRequest): Promise<SpaceReply> {
    const reply = await exchange(this.#node, address, () => ({ kind: 'space', request }));
    return decodeSpaceReply(reply as Uint8Array);
  }

  async free(address: string, request: FreeRequest): Promise<FreeReply> {
    const reply = await exchange(this.#node, address, () => ({ kind: 'free', request }));
    return decodeFreeReply(reply as Uint8Array, request.space);
  }

  async ringSync(address: string, request: RingSyncRequest): Promise<RingSyncReply> {
    const reply = await exchange(this.#node, address, () => ({ kind: 'ringSync', request }));
    return decodeRingSyncReply(reply as Uint8Array);
  }

  /** Undefined when `build` had nothing to hand over. */
  async handover(address: string, build: () => Donation | undefined): Promise<HandoverReply | undefined> {
    const reply = await exchange(this.#node, address, () => {
      const donation = build();
      return donation && { kind: 'handover', request: donation };
    });
    return reply && decodeHandoverReply(reply);
  }
}
