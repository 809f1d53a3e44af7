// What Membership asks its host to do. The host (agent/ with libp2p, the
// simulator, a unit test) performs sends and reacts to view changes; the
// state machine itself never touches I/O or clocks.

import type { MemberView } from './member-table.ts';
import type { MemberState, SwimMessage } from './messages.ts';

export type Effect =
  | { kind: 'send'; to: string; address: string; message: SwimMessage }
  /** The member's state, incarnation or address changed (self included). */
  | { kind: 'member-changed'; member: MemberView; previous: MemberState | null }
  /** A dead or left member was kept for reapMs and is now forgotten. */
  | { kind: 'member-reaped'; id: string };

export interface SelfInfo {
  id: string;
  address: string;
  /** Persisted incarnation, if the host keeps one; refutation copes without. */
  incarnation?: number;
}

export interface KnownMember {
  id: string;
  address: string;
  incarnation: number;
}
