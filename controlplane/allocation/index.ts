// Public surface of conflict-free allocation.
export { Allocator } from './allocator.ts';
export type { AllocResult, FreeResult, MergeOutcome, AllocatorStats } from './allocator.ts';
export { allocErrors } from './errors.ts';
export type { AllocError, AllocErrorCode } from './errors.ts';
export type { SpaceRequest, SpaceReply, Donation, Refusal, RefusalReason, FreeRequest, FreeReply } from './messages.ts';
export { emptyRing, initialRing, ownerOf, ranges, rangesOwnedBy, ringMalformation, tokenIndexAt } from './ring.ts';
export type { RingState, Token, Range } from './ring.ts';
export { mergeRings, explainConflict } from './merge.ts';
export type { RingConflict, RingMerge } from './merge.ts';
export { splitAt, updateToken, transferAll, NotOwnerError } from './edit.ts';
export { IntervalSet } from './intervals.ts';
export type { Run } from './intervals.ts';
export * from '../../lib/ipv4.ts';
export { chooseReclaimer, goneOwners, syncRefusal, spacesToReport, ReclaimRound } from './reclaim.ts';
export type { RingSyncRequest, RingSyncAnswer, RoundOutcome } from './reclaim.ts';
