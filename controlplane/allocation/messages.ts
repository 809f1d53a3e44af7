// Messages between allocators (proto/allocation.proto, package weft.alloc).
// The agent routes them by `space` to the allocator of that space; the
// allocators only produce and consume them.

import type { RingState } from './ring.ts';

/** "Give me some space" or, with `value`, "give me this value". */
export interface SpaceRequest {
  space: string;
  from: string;
  to: string;
  value?: number;
}

/**
 * Ownership handed to `to`. The ring already says so; `allocated` lists the
 * values inside the handed-over ranges that are still in use (only a
 * graceful leave or handover carries any), so the new owner never hands
 * them out again.
 */
export interface Donation {
  space: string;
  from: string;
  to: string;
  ring: RingState;
  allocated: number[];
}

export type RefusalReason = 'no-free-space' | 'not-owner' | 'in-use' | 'awaiting-handover' | 'not-allocated';

/** A refusal carries the refuser's ring so the asker learns who to ask instead. */
export interface Refusal {
  space: string;
  from: string;
  to: string;
  reason: RefusalReason;
  value?: number;
  ring: RingState;
}

export type SpaceReply = { kind: 'donated'; donation: Donation } | { kind: 'refused'; refusal: Refusal };

/** Ask the owner of `value` to free it (a cluster object removed on another node). */
export interface FreeRequest {
  space: string;
  from: string;
  to: string;
  value: number;
}

export type FreeReply = { kind: 'freed'; space: string; value: number } | { kind: 'refused'; refusal: Refusal };
