// What the tables report back: per-entry outcomes, batch summaries, local
// writes to broadcast, and the counters an operator reads in `weft doctor`.

import type { Change } from './change.ts';
import type { Entry, WireEntry } from './entry.ts';

export type ApplyStatus = 'applied' | 'stale' | 'forged' | 'unadmitted' | 'forgotten' | 'malformed' | 'implausible' | 'badSignature';

export interface ApplyResult {
  status: ApplyStatus;
  changes: Change[];
  /** Set for refusals: why, in words fit for a log line. */
  reason?: string;
}

export interface BatchResult {
  changes: Change[];
  applied: number;
  stale: number;
  refused: number;
  /**
   * Entries owned by this node that a peer held in a version this node did
   * not have: this node lost state (restart without its tables) or reaped a
   * tombstone that a peer had not seen. They are applied, because LWW must
   * converge, and reported so the agent can re-assert (set) or delete them;
   * the clock has witnessed them, so its next write wins.
   */
  selfConflicts: Entry[];
}

export interface LocalWrite {
  /** Broadcast this (through the Coalescer). */
  entry: WireEntry;
  changes: Change[];
}

export interface TableCounters {
  applied: number;
  stale: number;
  /** Entries whose owner was not the node that sent them over gossip. */
  forgeries: number;
  unadmitted: number;
  forgotten: number;
  malformed: number;
  /** Entries accepted from a sync peer on behalf of another owner. */
  relayed: number;
  selfConflicts: number;
  /** Entries whose Lamport time ran too far ahead (lamport.ts MAX_LAMPORT_JUMP). */
  implausible: number;
  /** New versions whose signature is missing or not the owner's. */
  badSignatures: number;
}

export type Refusal = 'forged' | 'unadmitted' | 'forgotten' | 'malformed' | 'implausible' | 'badSignature';

export const REFUSAL_COUNTER: Record<Refusal, keyof TableCounters> = {
  forged: 'forgeries', unadmitted: 'unadmitted', forgotten: 'forgotten', malformed: 'malformed', implausible: 'implausible', badSignature: 'badSignatures',
};
