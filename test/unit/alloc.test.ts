import test from 'ava';
import { Allocator, IntervalSet, initialRing, mergeRings, ranges } from '../../controlplane/allocation/index.ts';
import type { AllocResult, RingState } from '../../controlplane/allocation/index.ts';

const value = (r: AllocResult): number => {
  if (r.kind !== 'allocated') throw new Error(`expected an allocation, got ${JSON.stringify(r)}`);
  return r.value;
};

/** Delivers a space request to `owner` and its reply back; returns the retried allocation. */
function viaOwner(asker: Allocator, owner: Allocator, result: AllocResult, retry: () => AllocResult): AllocResult {
  if (result.kind !== 'request') throw new Error(`expected a request, got ${JSON.stringify(result)}`);
  const outcome = asker.receiveReply(owner.handleSpaceRequest(result.request));
  if (!outcome.ok) throw new Error(outcome.explanations.join('; '));
  return retry();
}

test('the first node owns the space and allocates upward without reusing a just-freed value', (t) => {
  const a = Allocator.init('a', 'vni', 1, 11);
  t.deepEqual([1, 2, 3].map(() => value(a.allocate([]))), [1, 2, 3]);
  t.deepEqual(a.free(2, []), { kind: 'freed', value: 2 });
  t.is(value(a.allocate([])), 4, 'the cursor moves on');
  t.deepEqual(a.stats(), { owned: 10, free: 7, allocated: 3, awaitingHandover: 0 });
  for (let i = 0; i < 7; i++) a.allocate([]);
  t.is(a.stats().free, 0);
  const full = a.allocate(['b']);
  t.is(full.kind === 'failed' && full.error.code, 'exhausted');
  t.is(a.ring.tokens[0]?.free, 0, 'free counts are published in the ring');
});

test('a joining node has no ring, then asks the owner and receives half of its largest free run', (t) => {
  const a = Allocator.init('a', 'ips', 0, 16);
  const b = Allocator.join('b', 'ips', 0, 16);
  const early = b.allocate(['a']);
  t.is(early.kind === 'failed' && early.error.code, 'no-ring');
  t.true(b.merge(a.ring).ok);
  const asked = b.allocate(['a']);
  t.deepEqual(asked, { kind: 'request', request: { space: 'ips', from: 'b', to: 'a' } });
  const got = value(viaOwner(b, a, asked, () => b.allocate(['a'])));
  t.is(got, 8);
  t.deepEqual(ranges(b.ring).map((r) => [r.start, r.end, r.token.owner]), [[0, 8, 'a'], [8, 16, 'b']]);
  t.deepEqual(b.stats(), { owned: 8, free: 7, allocated: 1, awaitingHandover: 0 });
  t.true(a.merge(b.ring).ok);
  t.deepEqual(a.ring, b.ring, 'after merging both ways they agree');
});

test('without a reachable owner, allocation fails with an explanation instead of guessing', (t) => {
  const a = Allocator.init('a', 'vni', 0, 8);
  const b = Allocator.join('b', 'vni', 0, 8);
  b.merge(a.ring);
  const cut = b.allocate(['c']);
  t.is(cut.kind, 'failed');
  if (cut.kind !== 'failed') return;
  t.is(cut.error.code, 'unreachable');
  t.deepEqual(cut.error.owners, ['a']);
  t.regex(cut.error.message, /no free vni space owned by this node and no reachable owner to ask .*retry when the cluster is healed/);
});

test('a specific value: taken if owned, requested from its owner otherwise, refused when in use', (t) => {
  const a = Allocator.init('a', 'vni', 1, 100);
  const b = Allocator.join('b', 'vni', 1, 100);
  b.merge(a.ring);
  t.is(value(a.allocateValue(42, [])), 42);
  const again = a.allocateValue(42, []);
  t.is(again.kind === 'failed' && again.error.code, 'in-use');
  const fromB = b.allocateValue(42, ['a']);
  if (fromB.kind !== 'request') return t.fail();
  t.is(fromB.request.value, 42);
  const refused = a.handleSpaceRequest(fromB.request);
  t.is(refused.kind === 'refused' && refused.refusal.reason, 'in-use');
  const wanted = b.allocateValue(77, ['a']);
  t.is(value(viaOwner(b, a, wanted, () => b.allocateValue(77, ['a']))), 77);
  t.is(b.ownedRanges().map((r) => `${r.start}-${r.end}`).join(), '77-78', 'exactly the requested value moved');
  const cut = b.allocateValue(5, []);
  t.is(cut.kind === 'failed' && cut.error.code, 'unreachable');
  const outside = b.allocateValue(100, ['a']);
  t.is(outside.kind === 'failed' && outside.error.code, 'out-of-space');
  t.true(a.merge(b.ring).ok);
  const taken = a.allocateValue(77, ['b']);
  t.is(taken.kind === 'request' && taken.request.to, 'b', 'the old owner now asks the new one');
});

test('freeing a value owned elsewhere is forwarded to its owner', (t) => {
  const a = Allocator.init('a', 'vip', 0, 10);
  const b = Allocator.join('b', 'vip', 0, 10);
  b.merge(a.ring);
  const v = value(a.allocate([]));
  const fwd = b.free(v, ['a']);
  if (fwd.kind !== 'forward') return t.fail();
  t.deepEqual(a.handleFreeRequest(fwd.request), { kind: 'freed', space: 'vip', value: v });
  const twice = a.handleFreeRequest(fwd.request);
  t.is(twice.kind === 'refused' && twice.refusal.reason, 'not-allocated');
  const cut = b.free(v, []);
  t.is(cut.kind === 'failed' && cut.error.code, 'unreachable');
  const outside = b.free(10, ['a']);
  t.is(outside.kind === 'failed' && outside.error.code, 'out-of-space');
});

test('graceful leave hands ranges and their in-use values to a peer', (t) => {
  const a = Allocator.init('a', 'subnets', 0, 8);
  const b = Allocator.join('b', 'subnets', 0, 8);
  b.merge(a.ring);
  const used = [value(a.allocate([])), value(a.allocate([]))];
  const donation = a.leave('b');
  if (donation === undefined) return t.fail();
  t.deepEqual(donation.allocated, used);
  t.true(b.receiveDonation(donation).ok);
  t.deepEqual(b.allocated(), used);
  t.deepEqual(b.stats(), { owned: 8, free: 6, allocated: 2, awaitingHandover: 0 });
  const next = value(b.allocate([]));
  t.false(used.includes(next));
  t.is(a.leave('b'), undefined, 'nothing left to hand over');
});

test('a handover seen through gossip before its donation keeps the range unusable', (t) => {
  const a = Allocator.init('a', 'vni', 0, 4);
  const b = Allocator.join('b', 'vni', 0, 4);
  const c = Allocator.join('c', 'vni', 0, 4);
  b.merge(a.ring);
  c.merge(a.ring);
  value(a.allocate([]));
  const donation = a.leave('b');
  if (donation === undefined) return t.fail();
  t.true(c.merge(donation.ring).ok);
  t.true(b.merge(c.ring).ok, 'b learns it owns the space from c, not from a');
  t.deepEqual(b.stats(), { owned: 4, free: 0, allocated: 0, awaitingHandover: 4 });
  const early = b.allocate(['c']);
  t.is(early.kind === 'failed' && early.error.code, 'awaiting-handover');
  t.true(b.receiveDonation(donation).ok);
  t.deepEqual(b.stats(), { owned: 4, free: 3, allocated: 1, awaitingHandover: 0 });
  t.is(value(b.allocate([])), 1);
});

test('reclaiming a dead node takes its ranges, keeping values cluster objects still use', (t) => {
  const a = Allocator.init('a', 'vni', 0, 10);
  const b = Allocator.join('b', 'vni', 0, 10);
  b.merge(a.ring);
  value(viaOwner(b, a, b.allocate(['a']), () => b.allocate(['a'])));
  value(b.allocate(['a']));
  a.merge(b.ring);
  // b dies; its VNI 6 still belongs to a network.
  t.is(a.reclaim('b', [6, 1]), 1);
  t.true(a.isAllocated(6));
  t.false(a.isAllocated(5), "b's other allocation died with it");
  t.deepEqual(a.stats(), { owned: 10, free: 9, allocated: 1, awaitingHandover: 0 });
  t.throws(() => a.reclaim('a', []), { message: /cannot reclaim its own/ });
  // If b was alive after all, merging its ring is a reported conflict, never a silent accept.
  const back = b.merge(a.ring);
  t.false(back.ok);
  if (!back.ok) {
    t.is(back.conflicts[0]?.kind, 'ownership-taken');
    t.regex(back.explanations[0] ?? '', /reclaimed while it was still alive/);
  }
});

test('bad merges are detected and refused as a whole', (t) => {
  const one = initialRing('vni', 0, 100, 'a');
  const other = initialRing('vni', 0, 100, 'b');
  const twoInits = mergeRings(one, other, 'c');
  t.false(twoInits.ok);
  t.is(!twoInits.ok && twoInits.conflicts[0]?.kind, 'same-version');
  const mismatch = mergeRings(one, initialRing('vni', 0, 50, 'a'), 'c');
  t.is(!mismatch.ok && mismatch.conflicts[0]?.kind, 'space-mismatch');
  const split: RingState = { ...one, tokens: [{ start: 0, owner: 'a', version: 1, free: 50 }, { start: 50, owner: 'x', version: 1, free: 50 }] };
  const carved = mergeRings(one, split, 'a');
  t.true(!carved.ok && carved.conflicts.some((c) => c.kind === 'range-split'), "nobody else may cut a's range");
  const olderSplit: RingState = { ...split, tokens: [{ start: 0, owner: 'a', version: 2, free: 50 }, { start: 50, owner: 'x', version: 1, free: 50 }] };
  const onlySplit = mergeRings(one, olderSplit, 'a');
  t.deepEqual(!onlySplit.ok && onlySplit.conflicts.map((c) => c.kind), ['ownership-taken', 'range-split']);
  const broken: RingState = { ...one, tokens: [{ start: 1, owner: 'a', version: 1, free: 1 }] };
  const malformed = mergeRings(one, broken, 'c');
  t.is(!malformed.ok && malformed.conflicts[0]?.kind, 'malformed');
  const a = Allocator.init('a', 'vni', 0, 100);
  const before = a.ring;
  t.false(a.merge(other).ok);
  t.is(a.ring, before, 'a refused merge changes nothing');
});

test('interval sets track members, gaps and next free values', (t) => {
  const s = new IntervalSet();
  for (const v of [5, 6, 8, 7, 1]) t.true(s.add(v));
  t.false(s.add(6));
  t.is(s.size, 5);
  t.deepEqual(s.values(), [1, 5, 6, 7, 8]);
  t.is(s.countIn(0, 7), 3);
  t.deepEqual(s.gapsIn(0, 10), [{ start: 0, end: 1 }, { start: 2, end: 5 }, { start: 9, end: 10 }]);
  t.is(s.nextAbsent(5, 10), 9);
  t.is(s.nextAbsent(5, 9), undefined);
  t.true(s.delete(6));
  t.false(s.delete(6));
  t.deepEqual(s.values(), [1, 5, 7, 8]);
  t.deepEqual(s.takeIn(5, 8), [5, 7]);
  t.deepEqual(s.values(), [1, 8]);
});
