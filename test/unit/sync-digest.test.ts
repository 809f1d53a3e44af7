import test from 'ava';
import { SYNC_DIGEST_BYTES, sameDigests, syncDigests } from '../../controlplane/cluster/sync-digest.ts';
import type { MemberRecord } from '../../controlplane/cluster/roster.ts';
import type { MemberState } from '../../controlplane/membership/index.ts';

const ids = ['a', 'b', 'c'].map((c) => c.repeat(32));
const record = (nodeId: string, version = 1): MemberRecord => ({
  nodeId, name: nodeId.slice(0, 4), peerId: `12D3KooW${nodeId.slice(0, 6)}`, address: '198.18.0.1', gossipPort: 7946, admissionPort: 2377,
  certificate: new Uint8Array([1, 2, 3]), version, status: 'active', changedBy: nodeId,
});
const live = (id: string, incarnation = 0, state: MemberState = 'alive') => ({ id, address: `/ip4/198.18.0.1/udp/7946/p2p/${id}`, incarnation, state });
const roster = ids.map((id) => record(id));
const view = ids.map((id) => live(id));

test('digests are 16 bytes and do not depend on the order the state was built in', (t) => {
  const a = syncDigests(roster, view);
  const b = syncDigests([...roster].reverse(), [...view].reverse());
  t.is(a.rosterDigest.length, SYNC_DIGEST_BYTES);
  t.is(a.membershipDigest.length, SYNC_DIGEST_BYTES);
  t.true(sameDigests(a, b));
});

test('any change of a record version, status, writer or member makes the roster digest differ', (t) => {
  const base = syncDigests(roster, view);
  const changes: MemberRecord[][] = [
    roster.map((r, i) => (i === 1 ? { ...r, version: 2 } : r)),
    roster.map((r, i) => (i === 1 ? { ...r, status: 'left' } : r)),
    roster.map((r, i) => (i === 1 ? { ...r, changedBy: ids[0]! } : r)),
    roster.slice(1),
    [...roster, record('d'.repeat(32))],
  ];
  for (const changed of changes) {
    const other = syncDigests(changed, view);
    t.false(sameDigests(base, other));
    t.deepEqual(other.membershipDigest, base.membershipDigest, 'the liveness digest is not about the roster');
  }
});

test('any change of liveness (state, incarnation, address, member) makes the membership digest differ', (t) => {
  const base = syncDigests(roster, view);
  const changes = [
    view.map((m, i) => (i === 2 ? { ...m, state: 'suspect' as const } : m)),
    view.map((m, i) => (i === 2 ? { ...m, incarnation: 1 } : m)),
    view.map((m, i) => (i === 2 ? { ...m, address: '/ip4/198.18.0.9/udp/7946' } : m)),
    view.slice(0, 2),
  ];
  for (const changed of changes) t.false(sameDigests(base, syncDigests(roster, changed)));
});

test('a peer that sent no digests, or a digest of another length, is never in sync', (t) => {
  const ours = syncDigests(roster, view);
  t.false(sameDigests(ours, {}));
  t.false(sameDigests(ours, { rosterDigest: ours.rosterDigest }));
  t.false(sameDigests(ours, { rosterDigest: ours.rosterDigest.subarray(0, 8), membershipDigest: ours.membershipDigest }));
});
