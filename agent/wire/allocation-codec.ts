// Wire codec for the allocator: rings published in the `allocations` table,
// the /weft/alloc/1 request/reply (space, free, handover, ring sync) and the local
// per-space state file. Frames are zod-checked after decoding; the allocator
// then refuses malformed or conflicting rings on its own terms.
import { z } from 'zod';
import type { Donation, RingState, RingSyncAnswer, RingSyncRequest, SpaceRequest, SpaceReply, FreeRequest, FreeReply } from '../../controlplane/allocation/index.ts';
import { encodePlain, allocationTypes } from './protos.ts';
import { checkedDecode } from './checked-decode.ts';

const MAX_ALLOC_BYTES = 8 * 1024 * 1024;
const MAX_STATE_BYTES = 64 * 1024 * 1024;
/**
 * Values one node may hold in one space: the largest space the agent defines
 * (VNIs, or the addresses of a /8 network) has 2^24. Runs are expanded into
 * single values on load, so their total is checked first: 23 bytes of runs
 * can otherwise name 2^32 values.
 */
const MAX_ALLOCATED_VALUES = 2 ** 24;
// Types added after protos.ts was written live in the same root.
const handoverReplyType = allocationTypes.Ring.root.lookupType('weft.alloc.HandoverReply');
const spaceStateType = allocationTypes.Ring.root.lookupType('weft.alloc.SpaceState');
const ringSyncReplyType = allocationTypes.Ring.root.lookupType('weft.alloc.RingSyncReply');
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
const MAX_SYNC_ITEMS = 10_000;
const callSchema = z.discriminatedUnion('request', [
  ...requestSchema.options,
  z.object({ request: z.literal('handover'), handover: donationSchema }),
  z.object({
    request: z.literal('ringSync'),
    ringSync: z.object({ from: nodeId, to: nodeId, gone: z.array(nodeId).max(MAX_SYNC_ITEMS), spaces: z.array(space).max(MAX_SYNC_ITEMS) }),
  }),
]);
const ringSyncReplySchema = z.object({
  refused: z.string().max(4096),
  rings: z.array(ringSchema).max(MAX_SYNC_ITEMS),
  inUse: z.array(z.object({ space, values: z.array(count).max(1_000_000) })).max(MAX_SYNC_ITEMS),
});
const handoverReplySchema = z.object({ accepted: z.boolean(), reason: z.string().max(4096) });
const spaceStateSchema = z
  .object({ ring: ringSchema, allocatedRuns: z.array(count).max(2_000_000) })
  .refine((s) => s.allocatedRuns.length % 2 === 0 && s.allocatedRuns.every((v, i, a) => i === 0 || (a[i - 1] as number) < v), 'allocated runs must be sorted, disjoint [start, end) pairs')
  .refine((s) => s.allocatedRuns.every((v) => v >= s.ring.start && v <= s.ring.end), 'allocated runs must lie inside the space')
  .refine((s) => runTotal(s.allocatedRuns) <= MAX_ALLOCATED_VALUES, `allocated runs cover more than ${MAX_ALLOCATED_VALUES} values`);

function runTotal(runs: readonly number[]): number {
  let total = 0;
  for (let i = 0; i + 1 < runs.length; i += 2) total += (runs[i + 1] as number) - (runs[i] as number);
  return total;
}
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
/** Every request /weft/alloc/1 carries: AllocRequest plus the graceful-leave handover and the reclaimer's ring sync. */
export type AllocCall = AllocRequest | { kind: 'handover'; request: Donation } | { kind: 'ringSync'; request: RingSyncRequest };

export function encodeAllocCall(r: AllocCall): Uint8Array {
  return encodePlain(allocationTypes.AllocRequest, { [r.kind]: r.request });
}

export function decodeAllocCall(data: Uint8Array): AllocCall {
  const r = checkedDecode(callSchema, allocationTypes.AllocRequest, data, 'allocation request', MAX_ALLOC_BYTES);
  if (r.request === 'handover') return { kind: 'handover', request: r.handover };
  if (r.request === 'ringSync') return { kind: 'ringSync', request: r.ringSync };
  return r.request === 'space' ? { kind: 'space', request: r.space } : { kind: 'free', request: r.free };
}

export interface HandoverReply {
  accepted: boolean;
  reason: string;
}

export const encodeHandoverReply = (reply: HandoverReply): Uint8Array => encodePlain(handoverReplyType, { ...reply });
export const decodeHandoverReply = (data: Uint8Array): HandoverReply =>
  checkedDecode(handoverReplySchema, handoverReplyType, data, 'handover reply', MAX_ALLOC_BYTES);

/** A member's answer to a reclaimer's ring sync: refused with a reason, or its rings and in-use values. */
export type RingSyncReply = { refused: string } | ({ refused: '' } & RingSyncAnswer);

export function encodeRingSyncReply(reply: RingSyncReply): Uint8Array {
  if (reply.refused !== '') return encodePlain(ringSyncReplyType, { refused: reply.refused, rings: [], inUse: [] });
  const answer = reply as RingSyncAnswer;
  return encodePlain(ringSyncReplyType, { refused: '', rings: answer.rings.map((r) => ({ ...r, tokens: [...r.tokens] })), inUse: answer.inUse });
}

export function decodeRingSyncReply(data: Uint8Array): RingSyncReply {
  const r = checkedDecode(ringSyncReplySchema, ringSyncReplyType, data, 'ring sync reply', MAX_ALLOC_BYTES);
  return r.refused !== '' ? { refused: r.refused } : { refused: '', rings: r.rings, inUse: r.inUse };
}

/** One space's persisted state: the ring and the values this node has handed out. */
export interface SpaceState {
  ring: RingState;
  allocated: number[];
}

export function encodeSpaceState(state: SpaceState): Uint8Array {
  return encodePlain(spaceStateType, { ring: { ...state.ring, tokens: [...state.ring.tokens] }, allocatedRuns: toRuns(state.allocated) });
}

/** Local files are checked like frames: a corrupt one must not become a wrong allocation. */
export function decodeSpaceState(data: Uint8Array, what: string): SpaceState {
  const s = checkedDecode(spaceStateSchema, spaceStateType, data, what, MAX_STATE_BYTES);
  const allocated: number[] = [];
  for (let i = 0; i < s.allocatedRuns.length; i += 2) {
    for (let v = s.allocatedRuns[i] as number; v < (s.allocatedRuns[i + 1] as number); v++) allocated.push(v);
  }
  return { ring: s.ring, allocated };
}

/** Sorted values → flat [start, end) pairs. */
function toRuns(values: readonly number[]): number[] {
  const sorted = [...values].sort((a, b) => a - b);
  const runs: number[] = [];
  for (const v of sorted) {
    if (runs.length > 0 && runs[runs.length - 1] === v) runs[runs.length - 1] = v + 1;
    else if (runs.length === 0 || (runs[runs.length - 1] as number) < v) runs.push(v, v + 1);
  }
  return runs;
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
