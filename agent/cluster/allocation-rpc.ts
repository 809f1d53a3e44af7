// /weft/alloc/1: a node without free space asks an owner for a share, and a
// node freeing a value it no longer owns forwards the free to the owner. One
// request and one reply per stream, over the certified libp2p connection.
import { lpStream } from '@libp2p/utils';
import { multiaddr } from '@multiformats/multiaddr';
import type { Connection, Stream } from '@libp2p/interface';
import type { FreeReply, FreeRequest, SpaceReply, SpaceRequest } from '../../controlplane/allocation/index.ts';
import { decodeAllocRequest, decodeFreeReply, decodeSpaceReply, encodeAllocRequest, encodeFreeReply, encodeSpaceReply, type AllocRequest } from '../wire/allocation-codec.ts';
import type { WeftLibp2p } from './libp2p-node.ts';

export const ALLOC_PROTOCOL = '/weft/alloc/1';
const RPC_TIMEOUT_MS = 10_000;
const MAX_FRAME = 8 * 1024 * 1024;

export interface AllocRpcHandlers {
  nodeIdOfPeer(peerId: string): string | undefined;
  /** Both run serialised with local allocations of the same space. */
  onSpaceRequest(request: SpaceRequest): Promise<SpaceReply>;
  onFreeRequest(request: FreeRequest): Promise<FreeReply>;
  onError(error: Error, peer: string): void;
}

export async function registerAllocRpc(node: WeftLibp2p, handlers: AllocRpcHandlers): Promise<void> {
  await node.handle(ALLOC_PROTOCOL, async (stream: Stream, connection: Connection) => {
    const peer = connection.remotePeer.toString();
    try {
      const from = handlers.nodeIdOfPeer(peer);
      if (!from) throw new Error('allocation request from a peer that is not an admitted member');
      const signal = AbortSignal.timeout(RPC_TIMEOUT_MS);
      const lp = lpStream(stream, { maxDataLength: MAX_FRAME });
      const request = decodeAllocRequest((await lp.read({ signal })).subarray());
      // A peer may only ask on its own behalf.
      if (request.request.from !== from) throw new Error(`allocation request claims to come from ${request.request.from}`);
      const reply = request.kind === 'space' ? encodeSpaceReply(await handlers.onSpaceRequest(request.request)) : encodeFreeReply(await handlers.onFreeRequest(request.request));
      await lp.write(reply, { signal });
      await stream.close({ signal });
    } catch (error) {
      stream.abort(error as Error);
      handlers.onError(error as Error, peer);
    }
  });
}

async function call(node: WeftLibp2p, address: string, request: AllocRequest): Promise<Uint8Array> {
  const signal = AbortSignal.timeout(RPC_TIMEOUT_MS);
  const stream = await node.dialProtocol(multiaddr(address), ALLOC_PROTOCOL, { signal });
  try {
    const lp = lpStream(stream, { maxDataLength: MAX_FRAME });
    await lp.write(encodeAllocRequest(request), { signal });
    const reply = (await lp.read({ signal })).subarray();
    await stream.close({ signal });
    return reply;
  } catch (error) {
    stream.abort(error as Error);
    throw error;
  }
}

export async function requestSpace(node: WeftLibp2p, address: string, request: SpaceRequest): Promise<SpaceReply> {
  return decodeSpaceReply(await call(node, address, { kind: 'space', request }));
}

export async function requestFree(node: WeftLibp2p, address: string, request: FreeRequest): Promise<FreeReply> {
  return decodeFreeReply(await call(node, address, { kind: 'free', request }), request.space);
}
