import assert from 'node:assert/strict';
import test from 'ava';
import fc from 'fast-check';
import { Coalescer, ReplicatedTables, compareVersions, tablePrefix, toWire } from '../../controlplane/tables/index.ts';
import type { Change, Entry, WireEntry } from '../../controlplane/tables/index.ts';

const REAP = 60_000;
const OWNERS = ['a', 'b', 'c', 'd'];
const TABLES = ['nodes', 'endpoints/n1'];
const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);

const wireArb: fc.Arbitrary<WireEntry> = fc.record({
  table: fc.constantFrom(...TABLES),
  key: fc.constantFrom('k0', 'k1', 'k2', 'k3', 'k4'),
  owner: fc.constantFrom(...OWNERS),
  lamport: fc.integer({ min: 0, max: 12 }),
  deleted: fc.boolean(),
  reapInMs: fc.integer({ min: 0, max: REAP }),
  value: fc.uint8Array({ maxLength: 2 }),
});

function tables(self = 'me'): ReplicatedTables {
  return new ReplicatedTables({ self, reapMs: REAP });
}

function fromEntries(entries: readonly WireEntry[], now = 1000): ReplicatedTables {
  const store = tables();
  for (const e of entries) store.applyRemote(now, e.owner, e);
  return store;
}

const hex = (v: Uint8Array): string => Buffer.from(v).toString('hex');

function dump(store: ReplicatedTables): string[] {
  return TABLES.flatMap((t) => store.stored(t))
    .map((e) => `${e.table}|${e.key}|${e.owner}|${e.lamport}|${e.deleted}|${hex(e.value)}|${e.reapAt ?? '-'}`)
    .sort();
}

function visible(store: ReplicatedTables): string[] {
  return TABLES.flatMap((t) => store.list(t)).map((e) => `${e.table}|${e.key}|${e.owner}|${e.lamport}|${hex(e.value)}`).sort();
}

/** Reference model: per (table, key) the greatest version under compareVersions. */
function model(entries: readonly WireEntry[]): Map<string, WireEntry> {
  const best = new Map<string, WireEntry>();
  for (const e of entries) {
    const id = `${e.table}|${e.key}`;
    const cur = best.get(id);
    if (cur === undefined || compareVersions(e, cur) > 0) best.set(id, e);
  }
  return best;
}

/** Merge of two replicas: `into` receives every stored entry of `from` through sync. */
function merged(into: readonly WireEntry[], from: readonly WireEntry[]): WireEntry[] {
  const store = fromEntries(into);
  store.applySynced(1000, 'peer', wiresOf(fromEntries(from)));
  return wiresOf(store);
}

function wiresOf(store: ReplicatedTables, now = 1000): WireEntry[] {
  return TABLES.flatMap((t) => store.stored(t)).map((e) => toWire(e, now));
}

test('merge result does not depend on order or duplication, and equals the LWW model', (t) => {
  fc.assert(
    fc.property(
      fc.array(wireArb, { maxLength: 30 }).chain((entries) =>
        fc.tuple(fc.constant(entries), fc.shuffledSubarray([...entries, ...entries], { minLength: entries.length * 2 }), fc.shuffledSubarray(entries, { minLength: entries.length })),
      ),
      ([entries, twiceShuffled, shuffled]) => {
        const a = fromEntries(entries);
        const b = fromEntries(twiceShuffled);
        const c = fromEntries(shuffled);
        assert.deepEqual(dump(b), dump(a));
        assert.deepEqual(dump(c), dump(a));
        const expected = [...model(entries).values()].map((e) => `${e.table}|${e.key}|${e.owner}|${e.lamport}|${e.deleted}|${hex(e.value)}`).sort();
        assert.deepEqual(dump(a).map((line) => line.replace(/\|[^|]*$/, '')), expected);
      },
    ),
    { numRuns: 300 },
  );
  t.pass();
});

test('state merge is commutative, associative and idempotent', (t) => {
  fc.assert(
    fc.property(fc.array(wireArb, { maxLength: 15 }), fc.array(wireArb, { maxLength: 15 }), fc.array(wireArb, { maxLength: 15 }), (x, y, z) => {
      assert.deepEqual(dump(fromEntries(merged(x, y))), dump(fromEntries(merged(y, x))));
      assert.deepEqual(dump(fromEntries(merged(merged(x, y), z))), dump(fromEntries(merged(x, merged(y, z)))));
      const store = fromEntries(x);
      const before = dump(store);
      const again = store.applySynced(1000, 'peer', wiresOf(store));
      assert.deepEqual(dump(store), before);
      assert.equal(again.changes.length, 0);
      assert.equal(again.applied, 0);
    }),
    { numRuns: 200 },
  );
  t.pass();
});

test('entries published by anyone but their owner are refused and counted', (t) => {
  fc.assert(
    fc.property(fc.array(fc.tuple(wireArb, fc.constantFrom(...OWNERS)), { maxLength: 20 }), (pairs) => {
      const store = tables();
      let forged = 0;
      for (const [entry, from] of pairs) {
        const result = store.applyRemote(1000, from, entry);
        if (from !== entry.owner) {
          forged += 1;
          assert.equal(result.status, 'forged');
          assert.equal(result.changes.length, 0);
        }
      }
      assert.equal(store.counters.forgeries, forged);
      const honest = pairs.filter(([e, from]) => e.owner === from).map(([e]) => e);
      assert.deepEqual(dump(store), dump(fromEntries(honest)));
      // A forged entry must not move the clock either.
      assert.equal(store.lamport, Math.max(0, ...honest.map((e) => e.lamport)));
    }),
    { numRuns: 200 },
  );
  t.pass();
});

test('a dead owner is hidden at once, kept, and restored when it comes back', (t) => {
  fc.assert(
    fc.property(fc.array(wireArb, { maxLength: 30 }), fc.constantFrom(...OWNERS), (entries, dead) => {
      const store = fromEntries(entries);
      const all = visible(store);
      const stored = dump(store);
      const hidden = store.setNodeLive(2000, dead, false);
      assert.ok(hidden.every((c) => c.op === 'remove' && c.entry.owner === dead));
      assert.deepEqual(visible(store), all.filter((line) => line.split('|')[2] !== dead));
      assert.equal(hidden.length, all.length - visible(store).length);
      assert.deepEqual(dump(store), stored, 'hidden entries are kept');
      assert.deepEqual(store.setNodeLive(2001, dead, false), [], 'a second verdict changes nothing');
      const restored = store.setNodeLive(3000, dead, true);
      assert.ok(restored.every((c) => c.op === 'add'));
      assert.deepEqual(restored.map((c) => c.key).sort(), hidden.map((c) => c.key).sort());
      assert.deepEqual(visible(store), all);
    }),
    { numRuns: 200 },
  );
  t.pass();
});

test('tombstones are reaped exactly when their deadline passes', (t) => {
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.constantFrom('k0', 'k1', 'k2', 'k3'), fc.boolean(), fc.integer({ min: 0, max: 5000 })), { maxLength: 40 }), fc.integer({ min: 0, max: 200_000 }), (ops, reapAt) => {
      const store = tables();
      let now = 0;
      const deadline = new Map<string, number>();
      for (const [key, del, step] of ops) {
        now += step;
        if (!del) {
          store.set(now, 'nodes', key, bytes(key));
          deadline.delete(key);
        } else if (store.delete(now, 'nodes', key) !== undefined) {
          deadline.set(key, now + REAP);
        }
      }
      const due = [...deadline.values()].filter((d) => d <= reapAt).length;
      assert.equal(store.reap(reapAt), due);
      const left = store.stored('nodes').filter((e) => e.deleted);
      assert.deepEqual(left.map((e) => e.key).sort(), [...deadline].filter(([, d]) => d > reapAt).map(([k]) => k).sort());
    }),
    { numRuns: 200 },
  );
  t.pass();
});

test('local writes tick the clock, receiving witnesses it, and changes describe the visible view', (t) => {
  const store = tables('me');
  const seen: Change[] = [];
  const stop = store.subscribe((changes) => seen.push(...changes), tablePrefix('endpoints/'));
  const first = store.set(0, 'endpoints/n1', 'ep1', bytes('v1'));
  t.is(first.entry.lamport, 1);
  t.deepEqual(first.changes.map((c) => c.op), ['add']);
  store.applyRemote(1, 'a', { table: 'nodes', key: 'a', owner: 'a', lamport: 50, deleted: false, reapInMs: 0, value: bytes('x') });
  const second = store.set(2, 'endpoints/n1', 'ep1', bytes('v2'));
  t.is(second.entry.lamport, 51);
  t.is(second.changes[0]?.op, 'update');
  t.deepEqual(second.changes[0]?.previous?.value, bytes('v1'));
  const gone = store.delete(3, 'endpoints/n1', 'ep1');
  t.is(gone?.entry.deleted, true);
  t.is(gone?.entry.reapInMs, REAP);
  t.is(gone?.changes[0]?.op, 'remove');
  t.deepEqual(gone?.changes[0]?.entry.value, bytes('v2'), "a 'remove' names the entry consumers had");
  t.is(store.delete(4, 'endpoints/n1', 'ep1'), undefined, 'nothing left to delete');
  t.deepEqual(seen.map((c) => c.op), ['add', 'update', 'remove'], 'the subscriber saw only endpoints/* changes');
  stop();
  store.set(5, 'endpoints/n1', 'ep2', bytes('v'));
  t.is(seen.length, 3);
});

test('a tombstone beats an older write and travels with its residual reap time', (t) => {
  const a = tables('a');
  a.set(0, 'nodes', 'k', bytes('v'));
  const tomb = a.delete(100, 'nodes', 'k');
  if (tomb === undefined) return t.fail();
  const b = tables('b');
  b.applyRemote(10_100, 'a', { ...tomb.entry, reapInMs: REAP - 10_000 });
  const older: WireEntry = { table: 'nodes', key: 'k', owner: 'a', lamport: 1, deleted: false, reapInMs: 0, value: bytes('v') };
  t.is(b.applyRemote(10_200, 'a', older).status, 'stale');
  t.is(b.get('nodes', 'k'), undefined);
  t.is(b.lookup('nodes', 'k')?.reapAt, 10_100 + REAP - 10_000);
  t.is(b.reap(10_100 + REAP - 10_001), 0);
  t.is(b.reap(10_100 + REAP - 10_000), 1);
  t.is(b.lookup('nodes', 'k'), undefined);
  const hostile = tables('c');
  hostile.applyRemote(0, 'a', { ...tomb.entry, reapInMs: 10 * REAP });
  t.is(hostile.lookup('nodes', 'k')?.reapAt, REAP, 'a residual longer than our reap time is capped');
});

test('while a node is dead its entries still sync (hidden); forgetNode drops them and refuses them back', (t) => {
  const store = tables('me');
  store.setNodeLive(0, 'a', false);
  const e: WireEntry = { table: 'endpoints/n1', key: 'ep', owner: 'a', lamport: 3, deleted: false, reapInMs: 0, value: bytes('v') };
  const synced = store.applySynced(1, 'b', [e]);
  t.is(synced.applied, 1);
  t.deepEqual(synced.changes, [], 'hidden on arrival');
  t.is(store.get('endpoints/n1', 'ep'), undefined);
  t.is(store.lookup('endpoints/n1', 'ep')?.lamport, 3);
  // A live owner's newer version of the same key is visible right away.
  const taken = store.applyRemote(2, 'b', { ...e, owner: 'b', lamport: 4 });
  t.is(taken.changes[0]?.op, 'add');
  store.forgetNode('a');
  t.is(store.applySynced(3, 'b', [{ ...e, key: 'other' }]).refused, 1);
  t.is(store.counters.forgotten, 1);
  t.deepEqual(store.setNodeLive(4, 'a', true), []);
  t.is(store.applySynced(5, 'b', [{ ...e, key: 'other' }]).applied, 1, 'a rejoined node is accepted again');
});

test('cluster-scoped tables outlive their writer', (t) => {
  const store = new ReplicatedTables({ self: 'me', reapMs: REAP, clusterScoped: (table) => table === 'networks' });
  store.applyRemote(0, 'a', { table: 'networks', key: 'n1', owner: 'a', lamport: 1, deleted: false, reapInMs: 0, value: bytes('n') });
  store.applyRemote(0, 'a', { table: 'endpoints/n1', key: 'ep', owner: 'a', lamport: 2, deleted: false, reapInMs: 0, value: bytes('e') });
  const changes = store.setNodeLive(1, 'a', false);
  t.deepEqual(changes.map((c) => `${c.op} ${c.table}`), ['remove endpoints/n1']);
  store.forgetNode('a');
  t.truthy(store.get('networks', 'n1'));
  t.is(store.lookup('endpoints/n1', 'ep'), undefined);
});

test('unadmitted owners and malformed entries are refused on every path', (t) => {
  const store = new ReplicatedTables({ self: 'me', isAdmitted: (node) => node !== 'revoked' });
  const e: WireEntry = { table: 'nodes', key: 'k', owner: 'revoked', lamport: 1, deleted: false, reapInMs: 0, value: bytes('v') };
  t.is(store.applyRemote(0, 'revoked', e).status, 'unadmitted');
  t.is(store.applySynced(0, 'b', [e]).refused, 1);
  t.is(store.applyRemote(0, 'a', { ...e, owner: 'a', lamport: -1 }).status, 'malformed');
  t.is(store.applyRemote(0, 'a', { ...e, owner: 'a', lamport: 1.5 }).status, 'malformed');
  t.deepEqual(store.counters, { ...store.counters, unadmitted: 2, malformed: 2, applied: 0 });
  t.is(store.lamport, 0);
});

test('a peer holding a newer version of our own key is reported as a self conflict', (t) => {
  const store = tables('me');
  store.set(0, 'nodes', 'me', bytes('fresh after restart'));
  const old: WireEntry = { table: 'nodes', key: 'me', owner: 'me', lamport: 40, deleted: false, reapInMs: 0, value: bytes('before restart') };
  const result = store.applySynced(1, 'b', [old, { ...old, key: 'forgotten-endpoint' }]);
  t.deepEqual(result.selfConflicts.map((e: Entry) => e.key).sort(), ['forgotten-endpoint', 'me']);
  t.is(store.counters.selfConflicts, 2);
  const reassert = store.set(2, 'nodes', 'me', bytes('fresh after restart'));
  t.is(reassert.entry.lamport, 41, 'the witnessed clock lets the owner win again');
});

test('the coalescer keeps one newest version per key, in first-queued order', (t) => {
  const c = new Coalescer();
  const e = (key: string, lamport: number): WireEntry => ({ table: 'nodes', key, owner: 'a', lamport, deleted: false, reapInMs: 0, value: bytes(key) });
  t.false(c.due(0, 5));
  c.add(10, e('x', 1));
  c.add(11, e('y', 2));
  c.add(12, e('x', 3));
  c.add(13, e('x', 2));
  t.is(c.size, 2);
  t.is(c.firstPendingAt, 10);
  t.false(c.due(14, 5));
  t.true(c.due(15, 5));
  const first = c.take(1);
  t.deepEqual(first.map((w) => [w.key, w.lamport]), [['x', 3]]);
  t.true(c.due(15, 5), 'what is left keeps its age');
  t.deepEqual(c.take().map((w) => [w.key, w.lamport]), [['y', 2]]);
  t.is(c.firstPendingAt, undefined);
  t.is(c.size, 0);
});
