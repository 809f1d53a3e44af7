// A Lamport time is a counter every node adopts: one member must not be able
// to push it to where the next write no longer encodes (2^53), nor ratchet it
// up by a whole batch of steps at once. Refusals are per entry.
import test from 'ava';
import fc from 'fast-check';
import { ReplicatedTables, MAX_LAMPORT_JUMP, MAX_LAMPORT } from '../../controlplane/tables/index.ts';
import type { WireEntry } from '../../controlplane/tables/index.ts';
import { decodeEntryBatch, encodeEntryBatch } from '../../agent/wire/tables-codec.ts';

const A = 'a'.repeat(32);
const R = 'c'.repeat(32);
const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);
const entry = (key: string, lamport: number, owner = R): WireEntry => ({ table: 'networks', key, owner, lamport, deleted: false, reapInMs: 0, value: bytes(key) });

test('a Lamport time far ahead of ours is refused for its entry only, and never adopted', (t) => {
  const b = new ReplicatedTables({ self: A });
  const result = b.applyRemoteBatch(1, R, [entry('evil', Number.MAX_SAFE_INTEGER), entry('fine', 3)]);
  t.is(result.applied, 1, 'the plausible entry of the same batch goes through');
  t.is(result.refused, 1);
  t.is(b.get('networks', 'evil'), undefined);
  t.is(b.lamport, 3);
  t.is(b.counters.implausible, 1);
  // Our next write still encodes and replicates.
  const next = b.set(2, 'networks', 'mine', bytes('y')).entry;
  t.deepEqual(decodeEntryBatch(encodeEntryBatch([next])).entries.map((e) => e.key), ['mine']);
});

test('a batch cannot ratchet the clock up: each entry is measured from the clock before the batch', (t) => {
  const b = new ReplicatedTables({ self: A });
  const steps = [1, 2, 3].map((i) => entry(`step${i}`, i * (MAX_LAMPORT_JUMP - 1)));
  t.is(b.applySynced(1, R, steps).applied, 1);
  t.is(b.lamport, MAX_LAMPORT_JUMP - 1);
});

test('no accepted time passes the ceiling, whatever the local clock', (t) => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: MAX_LAMPORT }), fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), (clock, lamport) => {
      const b = new ReplicatedTables({ self: A, initialLamport: clock });
      const applied = b.applyRemote(1, R, entry('k', lamport)).status === 'applied';
      const plausible = lamport <= clock + MAX_LAMPORT_JUMP && lamport <= MAX_LAMPORT;
      return applied === plausible && b.lamport <= MAX_LAMPORT && b.lamport + 1 <= Number.MAX_SAFE_INTEGER;
    }),
  );
  t.pass();
});
