// What `weft node ls` shows and whom the allocator counts as reachable:
// the roster joined with failure detection (controlplane/cluster/member-views.ts).
import test from 'ava';
import { memberViews, reachableMembers } from '../../controlplane/cluster/member-views.ts';
import type { MemberRecord } from '../../controlplane/cluster/roster.ts';

const record = (nodeId: string, status: MemberRecord['status']): MemberRecord => ({
  nodeId, name: nodeId, peerId: `peer-${nodeId}`, address: '198.18.0.1', gossipPort: 7946, admissionPort: 2377,
  certificate: Uint8Array.of(1), version: 1, status, changedBy: nodeId,
});

test('a recorded leave outranks liveness, revoked members are not listed, unknown ones count as alive', (t) => {
  const records = [record('a', 'active'), record('b', 'left'), record('c', 'revoked'), record('d', 'active')];
  const live = new Map([['a', { state: 'alive' as const, incarnation: 2 }], ['b', { state: 'alive' as const, incarnation: 1 }]]);
  const views = memberViews(records, (id) => live.get(id), new Set(['peer-b']), 'a');
  t.deepEqual(views.map((v) => [v.record.nodeId, v.state, v.incarnation, v.connected, v.self]), [
    ['a', 'alive', 2, false, true],
    ['b', 'left', 1, true, false],
    ['d', 'alive', 0, false, false],
  ]);
});

test('reachable: active members held alive or suspect', (t) => {
  const status = new Map<string, MemberRecord['status']>([['a', 'active'], ['b', 'active'], ['c', 'left'], ['d', 'active']]);
  const live = [
    { id: 'a', state: 'alive' as const },
    { id: 'b', state: 'suspect' as const },
    { id: 'c', state: 'alive' as const },
    { id: 'd', state: 'dead' as const },
  ];
  t.deepEqual(reachableMembers(live, (id) => status.get(id)), ['a', 'b']);
});
