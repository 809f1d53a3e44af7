// What one step of the node core asks its host to do (raft's Ready): the
// host (the agent over libp2p and timers, the simulator over its virtual
// network) performs it with deliverReady, which fixes the order.
//
// Order, and why:
//   1. persist: the tables changed; the store must hold a write before the
//      write is announced, or a crash after the announcement loses what
//      peers were told (the agent batches the save; see TableService).
//   2. topics: subscribe before publishing on a network's topic.
//   3. publish: coalesced table writes, one batch per topic.
//   4. send: SWIM packets.
//   5. member reactions: connection and sync duties that follow a liveness
//      change (controlplane/cluster/member-reactions.ts); visibility is
//      already applied inside the core.
//   6. own entries handed back (see BatchResult.selfConflicts).
import type { Entry, WireEntry } from '../tables/entry.ts';
import type { Change } from '../tables/change.ts';
import type { MemberView } from '../membership/member-table.ts';
import type { MemberState, SwimMessage } from '../membership/messages.ts';
import type { MemberReaction } from '../cluster/member-reactions.ts';

export interface Publication {
  topic: string;
  entries: WireEntry[];
}

export interface SwimSend {
  to: string;
  address: string;
  message: SwimMessage;
}

export interface MemberChange {
  member: MemberView;
  previous: MemberState | null;
  reaction: MemberReaction;
}

export interface Ready {
  persist: boolean;
  subscribe: string[];
  unsubscribe: string[];
  publish: Publication[];
  send: SwimSend[];
  memberChanges: MemberChange[];
  /** Members membership forgot after the reap time (their entries are dropped already). */
  reaped: string[];
  selfConflicts: Entry[];
  /** Table changes this step made, in order (a local write returns them to its caller). */
  changes: Change[];
  /** Received entries refused: bad signature, wrong topic or scope, undecodable. */
  refused: number;
  /** Entries to close a sync exchange with (after a 'sync-reply' input). */
  syncClose: WireEntry[];
}

export function emptyReady(): Ready {
  return { persist: false, subscribe: [], unsubscribe: [], publish: [], send: [], memberChanges: [], reaped: [], selfConflicts: [], changes: [], refused: 0, syncClose: [] };
}

/** The host's side of a Ready; each duty is optional. */
export interface ReadySink {
  persist?(): void;
  subscribe?(topic: string): void;
  unsubscribe?(topic: string): void;
  publish?(publication: Publication): void;
  send?(send: SwimSend): void;
  memberChanged?(change: MemberChange): void;
  reaped?(nodeId: string): void;
  selfConflicts?(entries: Entry[]): void;
}

/** Performs a Ready in the order the header gives. */
export function deliverReady(ready: Ready, sink: ReadySink): void {
  if (ready.persist) sink.persist?.();
  for (const topic of ready.subscribe) sink.subscribe?.(topic);
  for (const topic of ready.unsubscribe) sink.unsubscribe?.(topic);
  for (const publication of ready.publish) sink.publish?.(publication);
  for (const send of ready.send) sink.send?.(send);
  for (const change of ready.memberChanges) sink.memberChanged?.(change);
  for (const id of ready.reaped) sink.reaped?.(id);
  if (ready.selfConflicts.length > 0) sink.selfConflicts?.(ready.selfConflicts);
}
