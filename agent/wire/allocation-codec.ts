// Wire codec for the allocator: rings published in the `allocations` table and
// the /weft/alloc/1 request/reply. Frames are zod-checked after decoding; the
// allocator then refuses malformed or conflicting rings on its own terms.
import { z } from 'zod';
import type { RingState, SpaceRequest, SpaceReply, FreeRequest, FreeReply } from '../../controlplane/allocation/index.ts';
import { encodePlain, allocationTypes } from './protos.ts';
import { checkedDecode } from './checked-decode.ts';

const MAX_ALLOC_BYTES = 8 * 1024 * 1024;
const nodeId = z.string().regex(/^[0-9a-f]{32}$/);
const space = z.string().min(1).max(64);
const count = z.number().int().nonnegative().max(2 ** 32);
const ringSchema = z.object({
  space,
  start: count,
  end: count,
  tokens: z.array(z.object({ start: count, owner: nodeId, version: z.number().int().nonnegative(), free: count })).max(1_000_000),
});
const refusalSchema = z.object({
  space, from: nodeId, to: nodeId,
  reason: z.enum(['no-free-space', 'not-owner', 'in-use', 'awaiting-handover', 'not-allocated']),
  value: count.optional(),
  ring: ringSchema,
});
const donationSchema = z.object({ space, from: nodeId, to: nodeId, ring: ringSchema, allocated: z.array(count).max(1_000_000) });
const requestSchema = z.discriminatedUnion('request', [
  z.object({ request: z.literal('space'), space: z.object({ space, from: nodeId, to: nodeId, value: count.optional() }) }),
  z.object({ request: z.literal('free'), free: z.object({ space, from: nodeId, to: nodeId, value: count }) }),
]);
const spaceReplySchema = z.discriminatedUnion('reply', [
  z.object({ reply: z.literal('donated'), donated: donationSchema }),
  z.object({ reply: z.literal('refused'), refused: refusalSchema }),
]);
const freeReplySchema = z.discriminatedUnion('reply', [
  z.object({ reply: z.literal('freed'), freed: count }),
  z.object({ reply: z.literal('refused'), refused: refusalSchema }),
]);

export const encodeRing = (ring: RingState): Uint8Array => encodePlain(allocationTypes.Ring, { ...ring, tokens: [...ring.tokens] });
export const decodeRing = (data: Uint8Array): RingState => checkedDecode(ringSchema, allocationTypes.Ring, data, 'allocation ring', MAX_ALLOC_BYTES);

export type AllocRequest = { kind: 'space'; request: SpaceRequest } | { kind: 'free'; request: FreeRequest };

export function encodeAllocRequest(r: AllocRequest): Uint8Array {
  return encodePlain(allocationTypes.AllocRequest, r.kind === 'space' ? { space: r.request } : { free: r.request });
}

export function decodeAllocRequest(data: Uint8Array): AllocRequest {
  const r = checkedDecode(requestSchema, allocationTypes.AllocRequest, data, 'allocation request', MAX_ALLOC_BYTES);
  return r.request === 'space' ? { kind: 'space', request: r.space } : { kind: 'free', request: r.free };
}

export function encodeSpaceReply(reply: SpaceReply): Uint8Array {
  return encodePlain(allocationTypes.SpaceReply, reply.kind === 'donated' ? { donated: reply.donation } : { refused: reply.refusal });
}

export function decodeSpaceReply(data: Uint8Array): SpaceReply {
  const r = checkedDecode(spaceReplySchema, allocationTypes.SpaceReply, data, 'space reply', MAX_ALLOC_BYTES);
  return r.reply === 'donated' ? { kind: 'donated', donation: r.donated } : { kind: 'refused', refusal: r.refused };
}

export function encodeFreeReply(reply: FreeReply): Uint8Array {
  return encodePlain(allocationTypes.FreeReply, reply.kind === 'freed' ? { freed: reply.value } : { refused: reply.refusal });
}

export function decodeFreeReply(data: Uint8Array, space: string): FreeReply {
  const r = checkedDecode(freeReplySchema, allocationTypes.FreeReply, data, 'free reply', MAX_ALLOC_BYTES);
  return r.reply === 'freed' ? { kind: 'freed', space, value: r.freed } : { kind: 'refused', refusal: r.refused };
}
