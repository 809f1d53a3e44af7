// What a change of a member's liveness means for the rest of the node, as a
// decision with no I/O (agent/cluster/cluster-node.ts carries it out):
//   - its entries are visible while it is alive or suspect, hidden otherwise;
//   - dead: its connections are aborted, since after a partition they are
//     likely stalled in TCP backoff (docs/membership.md, "Connections under
//     SWIM"), and the dialer makes fresh ones as soon as the path works;
//   - back from dead: a table sync at once, for the entries it wrote while we
//     held it dead (its gossip went nowhere), not at the next periodic sync.
import type { MemberState } from '../membership/messages.ts';

export interface MemberReaction {
  /** Whether the member's table entries are visible. */
  visible: boolean;
  /** Abort every connection to the member. */
  dropConnections: boolean;
  /** Run a table sync with the member on its newest open connection. */
  sync: boolean;
}

export function reactionToMemberChange(state: MemberState, previous: MemberState | null): MemberReaction {
  return {
    visible: state === 'alive' || state === 'suspect',
    dropConnections: state === 'dead',
    sync: previous === 'dead' && state === 'alive',
  };
}
