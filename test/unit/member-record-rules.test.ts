// Who may change a member record (controlplane/cluster/member-record-rules.ts),
// judged without libp2p: the rules the agent runs on every record it receives.
import test from 'ava';
import { gossipWriterProblem, judgeRecord, selfRecordStale, type RecordContext } from '../../controlplane/cluster/member-record-rules.ts';
import { MAX_VERSION_JUMP, type MemberRecord } from '../../controlplane/cluster/roster.ts';

const A = 'a'.repeat(32);
const B = 'b'.repeat(32);
const SIGNED = Uint8Array.of(9);

const recordOf = (nodeId: string, fields: Partial<MemberRecord> = {}): MemberRecord => ({
  nodeId, name: nodeId.slice(0, 2), peerId: `peer-${nodeId.slice(0, 2)}`, address: '198.18.0.1', gossipPort: 7946, admissionPort: 2377,
  certificate: Uint8Array.of(1), version: 3, status: 'active', changedBy: nodeId, signature: SIGNED, ...fields,
});

// Signatures are checked by record-signing.ts (test/unit/record-signing.test.ts); here every signed record verifies.
const context = (self: MemberRecord, held?: number): RecordContext => ({
  selfId: self.nodeId, self, held, activePeerOf: (id) => `peer-${id.slice(0, 2)}`, verify: (_peer, _payload, signature) => signature.length > 0,
});

test('gossip carries only what its sender wrote', (t) => {
  t.is(gossipWriterProblem(recordOf(B), B), undefined);
  t.regex(gossipWriterProblem(recordOf(B, { changedBy: A }), B)!, /may only gossip its own writes/);
});

test('another member\'s plausible, signed record is merged; an implausible or unsigned one is refused', (t) => {
  const self = recordOf(A);
  t.deepEqual(judgeRecord(recordOf(B, { version: 4 }), context(self, 3)), { kind: 'merge' });
  const far = judgeRecord(recordOf(B, { version: 3 + MAX_VERSION_JUMP + 1 }), context(self, 3));
  t.is(far.kind, 'refuse');
  const unsigned = judgeRecord(recordOf(B, { signature: new Uint8Array() }), context(self, 3));
  t.is(unsigned.kind, 'refuse');
});

test('our own record: a revocation is taken, a foreign or stale version is outvoted, our own version is ignored', (t) => {
  const self = recordOf(A, { version: 5 });
  t.deepEqual(judgeRecord(recordOf(A, { status: 'revoked', version: 6, changedBy: B }), context(self, 5)), { kind: 'revoked' });
  // Our sponsor's first version of our record coming back after we rewrote it: older, ignored.
  t.deepEqual(judgeRecord(recordOf(A, { version: 1, changedBy: B }), context(self, 5)), { kind: 'ignore' });
  // A peer holds our record as left (from an earlier life) in a version as new as ours: write ours above it.
  t.deepEqual(judgeRecord(recordOf(A, { status: 'left', version: 7 }), context(self, 5)), { kind: 'outvote', version: 8 });
  t.deepEqual(judgeRecord(recordOf(A, { version: 5 }), context(self, 5)), { kind: 'ignore' });
});

test('our own record is rewritten when it is stale, sponsored or unsigned', (t) => {
  const current = recordOf(A, { address: '198.18.0.1' });
  t.false(selfRecordStale(current, A, { address: '198.18.0.1', gossipPort: 7946 }));
  t.true(selfRecordStale(current, A, { address: '198.18.0.9' }), 'a new advertise address');
  t.true(selfRecordStale(recordOf(A, { changedBy: B }), A, {}), 'still the sponsor\'s version');
  t.true(selfRecordStale(recordOf(A, { signature: undefined }), A, {}), 'written by an agent before record signatures');
});
