// Incarnations are a member's own counter; a forged claim must not push it
// past what the wire (uint32) carries, nor move it by an absurd amount.
import test from 'ava';
import { Membership } from '../../controlplane/membership/membership.ts';
import { UNSIGNED_CLAIMS } from '../../controlplane/membership/claim-signing.ts';
import type { MemberState, MemberUpdate } from '../../controlplane/membership/messages.ts';
import { isValidUpdate } from '../../controlplane/membership/messages.ts';
import { MAX_INCARNATION, MAX_INCARNATION_JUMP } from '../../controlplane/membership/update-rules.ts';
import { mulberry32 } from '../../controlplane/membership/rng.ts';
import { decodeSwim, encodeSwim } from '../../agent/wire/swim-codec.ts';

const A = 'a'.repeat(32);
const B = 'b'.repeat(32);
const C = 'c'.repeat(32);

function member(): Membership {
  const m = new Membership({ self: { id: A, address: 'addr-a' }, rng: mulberry32(1), now: 0, claims: UNSIGNED_CLAIMS });
  m.addMember(0, { id: B, address: 'addr-b', incarnation: 0 });
  m.addMember(0, { id: C, address: 'addr-c', incarnation: 0 });
  return m;
}

const claim = (node: string, state: MemberState, incarnation: number, from: string): MemberUpdate => ({ node, address: `addr-${node}`, incarnation, state, from });

test('an accusation at incarnation 2^32-1 does not make us refute past uint32 (no wrap)', (t) => {
  const m = member();
  m.handle(1, B, { kind: 'gossip', updates: [claim(A, 'suspect', 2 ** 32 - 1, B)] });
  const self = m.member(A)!;
  t.true(self.incarnation <= MAX_INCARNATION);
  t.true(isValidUpdate({ node: A, address: self.address, incarnation: self.incarnation, state: self.state, from: A }));
  // What we announce is what others decode.
  const wire = decodeSwim(encodeSwim({ kind: 'gossip', updates: [{ node: A, address: self.address, incarnation: self.incarnation, state: 'alive', from: A }] }));
  t.is(wire.updates[0]!.incarnation, self.incarnation);
});

test('a claim that jumps more than MAX_INCARNATION_JUMP ahead is ignored, about us or about others', (t) => {
  const m = member();
  m.handle(1, C, { kind: 'gossip', updates: [claim(A, 'dead', MAX_INCARNATION_JUMP + 1, C)] });
  t.is(m.member(A)!.incarnation, 0, 'no refutation of an absurd claim');
  m.handle(1, C, { kind: 'gossip', updates: [claim(B, 'left', MAX_INCARNATION_JUMP + 1, C)] });
  t.like(m.member(B), { state: 'alive', incarnation: 0 });
  // Within the bound the usual rules hold.
  m.handle(2, C, { kind: 'gossip', updates: [claim(A, 'suspect', MAX_INCARNATION_JUMP, C)] });
  t.is(m.member(A)!.incarnation, MAX_INCARNATION_JUMP + 1);
  m.handle(2, B, { kind: 'gossip', updates: [claim(B, 'alive', 7, B)] });
  t.like(m.member(B), { state: 'alive', incarnation: 7 });
});

test('strangers enter with a bounded incarnation, and snapshots follow the same bound', (t) => {
  const m = member();
  m.mergeSnapshot(1, { from: C, members: [{ node: 'd'.repeat(32), address: 'addr-d', incarnation: 2 ** 32 - 2, state: 'alive' }, { node: B, address: 'addr-b', incarnation: 2 ** 31, state: 'dead' }] });
  t.is(m.member('d'.repeat(32)), undefined);
  t.like(m.member(B), { state: 'alive', incarnation: 0 });
});

test('leave() at the ceiling still announces a valid incarnation', (t) => {
  const m = new Membership({ self: { id: A, address: 'addr-a', incarnation: MAX_INCARNATION }, rng: mulberry32(1), now: 0, claims: UNSIGNED_CLAIMS });
  m.leave(1);
  t.like(m.member(A), { state: 'left' });
  t.true(m.member(A)!.incarnation <= MAX_INCARNATION);
});
