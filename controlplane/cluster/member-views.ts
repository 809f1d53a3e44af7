// What `weft node ls` and the allocator see of the members: the roster (who
// is admitted, who left) joined with failure detection's view (who answers).
import type { MemberRecord } from './roster.ts';
import type { MemberState } from '../membership/messages.ts';

export interface MemberView {
  record: MemberRecord;
  state: MemberState;
  incarnation: number;
  connected: boolean;
  self: boolean;
}

/** Failure detection's verdict on a member, as the membership table holds it. */
export type LiveView = (nodeId: string) => { state: MemberState; incarnation: number } | undefined;

export function memberViews(records: readonly MemberRecord[], live: LiveView, connectedPeers: ReadonlySet<string>, selfId: string): MemberView[] {
  return records
    .filter((r) => r.status !== 'revoked')
    .map((record) => {
      const seen = live(record.nodeId);
      // A graceful leave recorded in the roster outranks whatever liveness last saw.
      const state: MemberState = record.status === 'left' ? 'left' : (seen?.state ?? 'alive');
      return { record, state, incarnation: seen?.incarnation ?? 0, connected: connectedPeers.has(record.peerId), self: record.nodeId === selfId };
    });
}

/** Active members that failure detection holds alive or suspect (self included). */
export function reachableMembers(live: readonly { id: string; state: MemberState }[], statusOf: (nodeId: string) => MemberRecord['status'] | undefined): string[] {
  return live.filter((m) => (m.state === 'alive' || m.state === 'suspect') && statusOf(m.id) === 'active').map((m) => m.id);
}
