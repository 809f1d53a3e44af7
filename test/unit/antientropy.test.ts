import assert from 'node:assert/strict';
import test from 'ava';
import fc from 'fast-check';
import { ReplicatedTables, completeSync, compareVersions, diffAgainstDigest, exchange, makeDigest } from '../../controlplane/tables/index.ts';
import type { WireEntry } from '../../controlplane/tables/index.ts';

const TABLES = ['nodes', 'endpoints/n1', 'endpoints/n2'];
const OWNERS = ['a', 'b', 'c', 'd'];
const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);
const hex = (v: Uint8Array): string => Buffer.from(v).toString('hex');

const wireArb: fc.Arbitrary<WireEntry> = fc.record({
  table: fc.constantFrom(...TABLES),
  key: fc.constantFrom('k0', 'k1', 'k2', 'k3', 'k4', 'k5'),
  owner: fc.constantFrom(...OWNERS),
  lamport: fc.integer({ min: 0, max: 30 }),
  deleted: fc.boolean(),
  reapInMs: fc.integer({ min: 1, max: 60_000 }),
  value: fc.uint8Array({ maxLength: 2 }),
});

const localWriteArb = fc.record({ table: fc.constantFrom(...TABLES), key: fc.constantFrom('k0', 'k1', 'own'), del: fc.boolean() });
type LocalWriteOp = { table: string; key: string; del: boolean };

function replica(self: string, entries: readonly WireEntry[], writes: readonly LocalWriteOp[], dead: readonly string[]): ReplicatedTables {
  const store = new ReplicatedTables({ self, reapMs: 60_000 });
  for (const node of dead) store.setNodeLive(0, node, false);
  for (const e of entries) store.applyRemote(1000, e.owner, e);
  for (const w of writes) {
    if (w.del) store.delete(1000, w.table, w.key);
    else store.set(1000, w.table, w.key, bytes(`${self}:${w.key}`));
  }
  return store;
}

/** Stored state without local reap deadlines, which are not part of a version. */
function versions(store: ReplicatedTables): string[] {
  return TABLES.flatMap((t) => store.stored(t))
    .map((e) => `${e.table}|${e.key}|${e.owner}|${e.lamport}|${e.deleted}|${hex(e.value)}`)
    .sort();
}

function visible(store: ReplicatedTables): string[] {
  return TABLES.flatMap((t) => store.list(t)).map((e) => `${e.table}|${e.key}|${e.owner}|${e.lamport}|${hex(e.value)}`).sort();
}

const divergedArb = fc.record({
  common: fc.array(wireArb, { maxLength: 25 }),
  onlyA: fc.array(wireArb, { maxLength: 15 }),
  onlyB: fc.array(wireArb, { maxLength: 15 }),
  writesA: fc.array(localWriteArb, { maxLength: 4 }),
  writesB: fc.array(localWriteArb, { maxLength: 4 }),
  dead: fc.subarray(OWNERS, { maxLength: 2 }),
});

test('two diverged replicas hold the same state after one exchange', (t) => {
  fc.assert(
    fc.property(divergedArb, ({ common, onlyA, onlyB, writesA, writesB, dead }) => {
      const a = replica('A', [...common, ...onlyA], writesA, dead);
      const b = replica('B', [...onlyB, ...common], writesB, dead);
      // The expected result: every version either side holds, merged by LWW.
      const union = new Map<string, WireEntry>();
      for (const store of [a, b]) {
        for (const e of TABLES.flatMap((tb) => store.stored(tb))) {
          const id = `${e.table}|${e.key}`;
          const cur = union.get(id);
          if (cur === undefined || compareVersions(e, cur) > 0) union.set(id, { ...e, reapInMs: 0 });
        }
      }
      exchange(2000, a, b, TABLES);
      assert.deepEqual(versions(a), versions(b));
      assert.deepEqual(visible(a), visible(b));
      assert.deepEqual(versions(a), [...union.values()].map((e) => `${e.table}|${e.key}|${e.owner}|${e.lamport}|${e.deleted}|${hex(e.value)}`).sort());
      // Hidden entries were synced, and stay hidden on both sides.
      for (const line of visible(a)) assert.ok(!dead.includes(line.split('|')[2] as string));
      // A second round finds nothing to do.
      const again = exchange(3000, a, b, TABLES);
      assert.equal(again.reply.entries.length + again.reply.buckets.length + again.final.length, 0);
    }),
    { numRuns: 300 },
  );
  t.pass();
});

test('replicas that agree exchange a digest and an empty reply, nothing else', (t) => {
  fc.assert(
    fc.property(fc.array(wireArb, { maxLength: 40 }).chain((es) => fc.tuple(fc.constant(es), fc.shuffledSubarray(es, { minLength: es.length }))), ([entries, shuffled]) => {
      const a = replica('A', entries, [], []);
      const b = replica('B', shuffled, [], []);
      const round = exchange(2000, a, b, TABLES);
      assert.deepEqual(round.reply, { entries: [], buckets: [] });
      assert.deepEqual(round.final, []);
      assert.equal(round.initiator.changes.length + round.responder.changes.length, 0);
    }),
    { numRuns: 200 },
  );
  t.pass();
});

test('only the differing bucket travels, and a tombstone wins over a stale live copy', (t) => {
  const entries: WireEntry[] = [];
  for (const owner of OWNERS) for (let i = 0; i < 20; i++) entries.push({ table: 'nodes', key: `${owner}${i}`, owner, lamport: i + 1, deleted: false, reapInMs: 0, value: bytes('v') });
  const a = replica('A', entries, [], []);
  const b = replica('B', entries, [], []);
  const tomb: WireEntry = { table: 'nodes', key: 'c3', owner: 'c', lamport: 99, deleted: true, reapInMs: 30_000, value: new Uint8Array(0) };
  a.applyRemote(1000, 'c', tomb);
  const round = exchange(2000, b, a, TABLES);
  t.deepEqual(round.reply.buckets, [{ table: 'nodes', owner: 'c' }]);
  t.is(round.reply.entries.length, 20, "the responder's whole bucket c, not the other 60 entries");
  t.deepEqual(round.final, [], 'the initiator had nothing the responder lacked');
  t.deepEqual(round.initiator.changes.map((c) => `${c.op} ${c.key}`), ['remove c3']);
  t.is(b.lookup('nodes', 'c3')?.deleted, true);
  t.is(b.lookup('nodes', 'c3')?.reapAt, 2000 + 29_000, 'the residual reap time travelled');
});

test('an exchange stays inside the tables both sides agreed on', (t) => {
  const a = replica('A', [], [], []);
  const b = replica('B', [
    { table: 'endpoints/n1', key: 'x', owner: 'b', lamport: 1, deleted: false, reapInMs: 0, value: bytes('1') },
    { table: 'endpoints/n2', key: 'y', owner: 'b', lamport: 2, deleted: false, reapInMs: 0, value: bytes('2') },
  ], [], []);
  a.set(0, 'endpoints/n2', 'z', bytes('3'));
  const digest = makeDigest(a, ['endpoints/n1', 'endpoints/n2']);
  const reply = diffAgainstDigest(1, b, digest, (table) => table === 'endpoints/n1');
  t.deepEqual(reply.entries.map((e) => e.key), ['x']);
  // A hostile reply that pushes a table outside the digest is ignored.
  const pushy = { entries: [...reply.entries, { table: 'services', key: 's', owner: 'b', lamport: 3, deleted: false, reapInMs: 0, value: bytes('s') }], buckets: [...reply.buckets, { table: 'services', owner: 'b' }] };
  const done = completeSync(2, a, 'B', digest, pushy);
  t.is(a.lookup('services', 's'), undefined);
  t.deepEqual(done.entries, [], 'endpoints/n2 was not accepted by the responder, so nothing is sent for it');
  t.truthy(a.get('endpoints/n1', 'x'));
});

test('a peer away longer than the reap time hands a deleted entry to its owner, who deletes it anew', (t) => {
  // X wrote e1 on n1, P got it and went away; X deleted it and left n1, Q got the tombstone; both reaped it.
  const [x, p, q] = ['X', 'P', 'Q'].map((self) => new ReplicatedTables({ self, reapMs: 1000 })) as [ReplicatedTables, ReplicatedTables, ReplicatedTables];
  x.set(0, 'endpoints/n1', 'e1', bytes('ep'));
  exchange(1, p, x, ['endpoints/n1']);
  exchange(1, q, x, ['endpoints/n1']);
  x.delete(2, 'endpoints/n1', 'e1');
  exchange(3, q, x, ['endpoints/n1']);
  t.is(q.get('endpoints/n1', 'e1'), undefined);
  t.is(x.reap(5000) + q.reap(5000), 2, 'both tombstones reaped');
  // X is no longer on n1: its table filter leaves n1 out.
  const xAccepts = (table: string): boolean => table !== 'endpoints/n1';
  const back = exchange(6000, p, x, ['endpoints/n1'], xAccepts);
  t.deepEqual(back.reply.buckets, [{ table: 'endpoints/n1', owner: 'X' }], 'the owner answers for its own bucket outside its scope');
  t.deepEqual(back.responder.selfConflicts.map((e) => e.key), ['e1'], 'the owner sees its forgotten entry as a self conflict');
  // The owner's answer (the overlay's, in the agent): delete it again; the new tombstone reaches everyone.
  x.delete(6001, 'endpoints/n1', 'e1');
  exchange(6002, p, x, ['endpoints/n1'], xAccepts);
  exchange(6002, q, p, ['endpoints/n1']);
  t.is(p.get('endpoints/n1', 'e1'), undefined, 'the returning peer dropped it');
  t.is(q.get('endpoints/n1', 'e1'), undefined, 'and so did the peer it could have resurrected it on');
});

test('a service deleted while a peer was away longer than the endpoint reap time stays deleted', (t) => {
  // X created service s, P got it and went away; Q deleted s; everyone reaped endpoint-length tombstones.
  const clusterScoped = (table: string): boolean => table === 'services';
  const [x, p, q] = ['X', 'P', 'Q'].map((self) => new ReplicatedTables({ self, reapMs: 1000, clusterReapMs: 100_000, clusterScoped })) as [ReplicatedTables, ReplicatedTables, ReplicatedTables];
  x.set(0, 'services', 's', bytes('web'));
  exchange(1, p, x, ['services']);
  exchange(1, q, x, ['services']);
  q.delete(2, 'services', 's');
  exchange(3, x, q, ['services']);
  t.is(x.get('services', 's'), undefined);
  t.is(x.reap(5000) + q.reap(5000), 0, 'a cluster-scoped tombstone outlives the endpoint reap time');
  // P comes back with its live copy: the kept tombstone wins on both sides of every exchange.
  exchange(6000, p, x, ['services']);
  exchange(6000, q, p, ['services']);
  for (const node of [x, p, q]) t.is(node.get('services', 's'), undefined, `${node.self} does not see the deleted service`);
  t.is(x.reap(200_000), 1, 'and it is reaped after the cluster reap time');
});

test('cluster-scoped tombstones are never kept shorter than owner-bound ones', (t) => {
  const tables = new ReplicatedTables({ self: 'X', reapMs: 5000, clusterReapMs: 10, clusterScoped: (table) => table === 'services' });
  t.is(tables.reapMsOf('services'), 5000);
  t.is(tables.reapMsOf('endpoints/n1'), 5000);
  t.throws(() => new ReplicatedTables({ self: 'X', clusterReapMs: -1 }), { message: /clusterReapMs must be a positive number/ });
});

test('outside its scope, a responder answers only for its own bucket', (t) => {
  const p = new ReplicatedTables({ self: 'P', reapMs: 1000 });
  const x = new ReplicatedTables({ self: 'X', reapMs: 1000 });
  p.applyRemote(0, 'Y', { table: 'endpoints/n1', key: 'y', owner: 'Y', lamport: 1, deleted: false, reapInMs: 0, value: bytes('y') });
  p.set(0, 'endpoints/n1', 'p', bytes('p'));
  const reply = diffAgainstDigest(1, x, makeDigest(p, ['endpoints/n1']), () => false);
  t.deepEqual(reply, { entries: [], buckets: [] }, 'no bucket of X there, so nothing is listed and nothing is pulled');
});
