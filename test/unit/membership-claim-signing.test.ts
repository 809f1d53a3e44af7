// Only a member raises its own incarnation: alive claims carry its signature
// of (node, incarnation), and accusations may not name an incarnation above
// the highest it signed. Real ed25519 keys, as the agent uses.
import test from 'ava';
import { generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import type { ClaimSigning } from '../../controlplane/membership/claim-signing.ts';
import { incarnationPayload } from '../../controlplane/membership/claim-signing.ts';
import type { Effect } from '../../controlplane/membership/effects.ts';
import { Membership } from '../../controlplane/membership/membership.ts';
import type { MemberState, MemberUpdate } from '../../controlplane/membership/messages.ts';
import { MAX_INCARNATION_JUMP } from '../../controlplane/membership/update-rules.ts';
import { mulberry32 } from '../../controlplane/membership/rng.ts';
import { decodeSwim, encodeSwim } from '../../agent/wire/swim-codec.ts';

const A = 'a'.repeat(32);
const B = 'b'.repeat(32);
const C = 'c'.repeat(32);
const keys = new Map<string, { privateKey: KeyObject; publicKey: KeyObject }>([A, B, C].map((id) => [id, generateKeyPairSync('ed25519')]));

function signingFor(self: string): ClaimSigning {
  return {
    sign: (payload) => new Uint8Array(sign(null, payload, keys.get(self)!.privateKey)),
    verify: (node, payload, signature) => {
      const key = keys.get(node)?.publicKey;
      return key !== undefined && verify(null, payload, key, signature);
    },
  };
}

const signedBy = (signer: string, node: string, incarnation: number, address = `addr-${node}`): Uint8Array =>
  new Uint8Array(sign(null, incarnationPayload(node, incarnation, address), keys.get(signer)!.privateKey));

function member(id: string): Membership {
  const m = new Membership({ self: { id, address: `addr-${id}` }, rng: mulberry32(1), now: 0, claims: signingFor(id) });
  for (const other of [A, B, C]) if (other !== id) m.addMember(0, { id: other, address: `addr-${other}`, incarnation: 0 });
  return m;
}

const claim = (node: string, state: MemberState, incarnation: number, from: string, signature?: Uint8Array): MemberUpdate => ({
  node, address: `addr-${node}`, incarnation, state, from, ...(signature === undefined ? {} : { signature }),
});

const sentUpdates = (effects: Effect[]): MemberUpdate[] => effects.flatMap((e) => (e.kind === 'send' ? e.message.updates : []));

test('a forged alive claim with a huge incarnation for another member is ignored', (t) => {
  const m = member(A);
  m.handle(1, C, { kind: 'gossip', updates: [claim(B, 'alive', MAX_INCARNATION_JUMP, C)] });
  t.like(m.member(B), { state: 'alive', incarnation: 0 }, 'unsigned');
  m.handle(2, C, { kind: 'gossip', updates: [claim(B, 'alive', MAX_INCARNATION_JUMP, C, signedBy(C, B, MAX_INCARNATION_JUMP))] });
  t.like(m.member(B), { state: 'alive', incarnation: 0 }, 'signed by the relay, not by the member');
});

test('4,000 bounded claims no longer push a member to the ceiling', (t) => {
  const m = member(A);
  for (let i = 1; i <= 4_100; i++) m.handle(i, C, { kind: 'gossip', updates: [claim(B, 'alive', m.member(B)!.incarnation + MAX_INCARNATION_JUMP, C)] });
  t.is(m.member(B)!.incarnation, 0);
});

test('a forged claim about ourselves does not make us refute to its incarnation', (t) => {
  const m = member(A);
  m.handle(1, C, { kind: 'gossip', updates: [claim(A, 'alive', MAX_INCARNATION_JUMP, C)] });
  m.handle(1, C, { kind: 'gossip', updates: [claim(A, 'suspect', MAX_INCARNATION_JUMP, C)] });
  t.is(m.member(A)!.incarnation, 0);
  // An accusation at our own incarnation is the normal case: refute by one.
  m.handle(2, C, { kind: 'gossip', updates: [claim(A, 'suspect', 0, C)] });
  t.is(m.member(A)!.incarnation, 1);
});

test('a refutation signed by the member is accepted, over the wire, and verified once', (t) => {
  const a = member(A);
  const b = member(B);
  // A accuses B; B refutes with a new, signed incarnation.
  b.handle(1, A, { kind: 'gossip', updates: [claim(B, 'suspect', 0, A)] });
  const refutation = sentUpdates(b.tick(1)).find((u) => u.node === B && u.state === 'alive');
  t.truthy(refutation?.signature);
  t.is(refutation!.incarnation, 1);
  const wire = decodeSwim(encodeSwim({ kind: 'gossip', updates: [refutation!] }));
  for (let i = 0; i < 50; i++) a.handle(2 + i, C, wire);
  t.like(a.member(B), { state: 'alive', incarnation: 1 });
  t.is(a.claimVerifications, 1, 'a claim gossiped many times is verified once');
  // A passes it on with B's signature, so that C accepts it from A.
  const c = member(C);
  const relayed = sentUpdates(a.tick(100)).filter((u) => u.node === B);
  t.true(relayed.length > 0);
  c.handle(101, A, { kind: 'gossip', updates: relayed });
  t.like(c.member(B), { state: 'alive', incarnation: 1 });
});

test('a member\'s signed alive replayed with another address is ignored', (t) => {
  const m = member(A);
  const forged = { ...claim(B, 'alive', 3, C, signedBy(B, B, 3)), address: 'addr-rogue' };
  m.handle(1, C, { kind: 'gossip', updates: [forged] });
  t.like(m.member(B), { incarnation: 0, address: `addr-${B}` });
  m.handle(2, B, { kind: 'gossip', updates: [claim(B, 'alive', 3, B, signedBy(B, B, 3))] });
  t.like(m.member(B), { incarnation: 3, address: `addr-${B}` });
  m.handle(3, C, { kind: 'gossip', updates: [forged] });
  t.like(m.member(B), { incarnation: 3, address: `addr-${B}` });
});

test('a suspect claim above the incarnation the member signed is ignored; at or below it counts', (t) => {
  const m = member(A);
  m.handle(1, C, { kind: 'gossip', updates: [claim(B, 'suspect', 5, C)] });
  t.like(m.member(B), { state: 'alive', incarnation: 0 });
  m.handle(2, C, { kind: 'gossip', updates: [claim(B, 'dead', 5, C)] });
  t.like(m.member(B), { state: 'alive', incarnation: 0 });
  // An accusation carrying the member's own signature of that incarnation is accepted.
  m.handle(3, C, { kind: 'gossip', updates: [claim(B, 'suspect', 5, C, signedBy(B, B, 5))] });
  t.like(m.member(B), { state: 'suspect', incarnation: 5 });
  m.handle(4, C, { kind: 'gossip', updates: [claim(C, 'suspect', 0, A)] });
  t.like(m.member(C), { state: 'suspect', incarnation: 0 });
});

test('snapshots follow the same rule and carry signatures', (t) => {
  const a = member(A);
  const b = member(B);
  b.handle(1, A, { kind: 'gossip', updates: [claim(B, 'suspect', 0, A)] }); // B refutes to 1
  const snapshot = b.snapshot();
  t.truthy(snapshot.members.find((e) => e.node === B)?.signature);
  a.mergeSnapshot(2, { from: C, members: [{ node: B, address: 'addr-b', incarnation: 9, state: 'alive' }] });
  t.is(a.member(B)!.incarnation, 0, 'unsigned snapshot entry ignored');
  a.mergeSnapshot(3, snapshot);
  t.like(a.member(B), { state: 'alive', incarnation: 1 });
});
