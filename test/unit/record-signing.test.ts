// A member record's status, address and version are its writer's word:
// signed by the member itself (active, left), by its sponsor (the first
// version), or by any active member for a removal. Nobody else's.
import test from 'ava';
import { generateKeyPair } from '@libp2p/crypto/keys';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import { OwnerKeys } from '../../agent/cluster/owner-keys.ts';
import { recordSignatureProblem, signedRecordFields } from '../../controlplane/cluster/record-signing.ts';
import type { MemberRecord } from '../../controlplane/cluster/roster.ts';

const A = 'a'.repeat(32);
const B = 'b'.repeat(32);
const R = 'c'.repeat(32);

async function node(): Promise<{ keys: OwnerKeys; peerId: string }> {
  const key = await generateKeyPair('Ed25519');
  return { keys: new OwnerKeys(key), peerId: peerIdFromPrivateKey(key).toString() };
}

test('only the subject signs its own state; a sponsor its first version; any active member a removal', async (t) => {
  const [a, b, r] = [await node(), await node(), await node()];
  const peers = new Map([[A, a.peerId], [B, b.peerId], [R, r.peerId]]);
  const active = (id: string): string | undefined => peers.get(id);
  const verify = (peerId: string, payload: Uint8Array, signature: Uint8Array): boolean => a.keys.verifyByPeer(peerId, payload, signature);
  const recordOfB = (fields: Partial<MemberRecord>): MemberRecord => ({
    nodeId: B, name: 'h2', peerId: b.peerId, address: '198.18.0.2', gossipPort: 7946, admissionPort: 2377,
    certificate: Uint8Array.of(1, 2, 3), version: 4, status: 'active', changedBy: B, ...fields,
  });
  const signBy = (keys: OwnerKeys, record: MemberRecord): MemberRecord => ({ ...record, signature: keys.sign(signedRecordFields(record)) });
  const problem = (record: MemberRecord): string | undefined => recordSignatureProblem(record, active, verify);

  t.is(problem(signBy(b.keys, recordOfB({}))), undefined);
  t.is(problem(signBy(b.keys, recordOfB({ status: 'left', version: 5 }))), undefined);
  t.is(problem(signBy(a.keys, recordOfB({ version: 1, changedBy: A }))), undefined, 'the sponsor writes version 1');
  t.is(problem(signBy(r.keys, recordOfB({ status: 'revoked', version: 5, changedBy: R }))), undefined, 'any member may remove');
  // The forgeries of issue 10: another member's "left", or its record moved elsewhere.
  t.regex(problem(signBy(r.keys, recordOfB({ status: 'left', version: 5, changedBy: R })))!, /only .* itself/);
  t.regex(problem(signBy(r.keys, recordOfB({ version: 5, address: '203.0.113.7', changedBy: R })))!, /only .* itself/);
  t.regex(problem(signBy(r.keys, recordOfB({ status: 'left', version: 5 })))!, /not signed by its writer/);
  // A signed record altered afterwards, an unsigned one, a removal by a non-member.
  t.regex(problem({ ...signBy(b.keys, recordOfB({})), address: '203.0.113.7' })!, /not signed by its writer/);
  t.regex(problem(recordOfB({}))!, /is not signed/);
  t.regex(recordSignatureProblem(signBy(r.keys, recordOfB({ status: 'revoked', version: 5, changedBy: R })), (id) => (id === R ? undefined : active(id)), verify)!, /not an active member/);
  t.regex(problem(signBy(b.keys, recordOfB({ status: 'revoked', version: 5 })))!, /cannot remove itself/);
});
