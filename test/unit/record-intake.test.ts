// The roster's intake of member records (controlplane/cluster/record-intake.ts):
// the record rules judged against the roster, and what each verdict changes.
// The agent and the simulator both run it.
import test from 'ava';
import { originProblem, takeRecord } from '../../controlplane/cluster/record-intake.ts';
import { Roster, type MemberRecord } from '../../controlplane/cluster/roster.ts';

const A = 'a'.repeat(32);
const B = 'b'.repeat(32);
const C = 'c'.repeat(32);
const SIGNED = Uint8Array.of(9);

const recordOf = (nodeId: string, fields: Partial<MemberRecord> = {}): MemberRecord => ({
  nodeId, name: nodeId.slice(0, 2), peerId: `peer-${nodeId.slice(0, 2)}`, address: '198.18.0.1', gossipPort: 7946, admissionPort: 2377,
  certificate: Uint8Array.of(1), version: 3, status: 'active', changedBy: nodeId, signature: SIGNED, ...fields,
});

// A signature verifies when it is SIGNED and the key is the expected writer's (record-signing.test.ts checks real ones).
const rosterOf = (...records: MemberRecord[]): Roster => {
  const roster = new Roster();
  for (const record of records) roster.merge(record);
  return roster;
};
const context = { selfId: A, verify: (_peer: string, _payload: Uint8Array, signature: Uint8Array) => signature.length > 0 };

test('a record that came by gossip from someone other than its writer is refused before anything else', (t) => {
  t.regex(originProblem(recordOf(B, { changedBy: C }), { kind: 'gossip', senderId: B }) ?? '', /may only gossip its own writes/);
  t.is(originProblem(recordOf(B), { kind: 'gossip', senderId: B }), undefined);
  t.is(originProblem(recordOf(B, { changedBy: C, status: 'revoked' }), { kind: 'sync', senderId: C }), undefined, 'sync relays others\' records');
});

test('another member\'s newer record is merged; an older one changes nothing; a certificate problem refuses it', (t) => {
  const roster = rosterOf(recordOf(A), recordOf(B));
  t.deepEqual(takeRecord(roster, recordOf(B, { version: 2 }), context), { kind: 'unchanged' });
  const newer = recordOf(B, { version: 4, status: 'left' });
  t.deepEqual(takeRecord(roster, newer, context), { kind: 'merged', outcome: 'updated', record: newer });
  t.is(roster.get(B)?.status, 'left');
  const added = takeRecord(roster, recordOf(C, { version: 1, changedBy: A }), context);
  t.is(added.kind, 'merged');
  t.deepEqual(takeRecord(roster, recordOf(C, { version: 2 }), { ...context, certificateProblem: 'certificate of c is not valid' }), { kind: 'refused', problem: 'certificate of c is not valid' });
  t.is(roster.get(C)?.version, 1, 'a refused record never reaches the roster');
});

test('an unsigned record is refused and the roster keeps what it held', (t) => {
  const roster = rosterOf(recordOf(A), recordOf(B));
  const outcome = takeRecord(roster, recordOf(B, { version: 4, status: 'left', signature: new Uint8Array() }), context);
  t.is(outcome.kind, 'refused');
  t.is(roster.get(B)?.status, 'active');
});

test('our own record: a revocation is merged, a foreign version outvoted, our own ignored', (t) => {
  const roster = rosterOf(recordOf(A, { version: 5 }), recordOf(B));
  t.deepEqual(takeRecord(roster, recordOf(A, { status: 'left', version: 7 }), context), { kind: 'outvote', version: 8 });
  t.is(roster.get(A)?.status, 'active', 'an outvote leaves writing to the host (it signs)');
  t.deepEqual(takeRecord(roster, recordOf(A, { version: 5 }), context), { kind: 'unchanged' });
  t.deepEqual(takeRecord(roster, recordOf(A, { status: 'revoked', version: 6, changedBy: B }), context), { kind: 'revoked' });
  t.is(roster.get(A)?.status, 'revoked');
});
