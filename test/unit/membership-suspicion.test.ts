import test from 'ava';
import fc from 'fast-check';
import { Suspicion, expectedConfirmations, suspicionBounds, suspicionTimeout } from '../../controlplane/membership/suspicion.ts';

// Defaults: suspicionMult 3, suspicionMaxTimeoutMult 6, probe interval 500 ms.
const bounds = (n: number) => suspicionBounds(3, 6, 500, n);

test('the lower bound scales with log10(N), never below one probe round', (t) => {
  t.deepEqual(bounds(10), { minMs: 1500, maxMs: 9000 });
  t.deepEqual(bounds(100), { minMs: 3000, maxMs: 18000 });
  t.deepEqual(bounds(1000), { minMs: 4500, maxMs: 27000 });
  // log10 of tiny clusters is < 1: memberlist floors the scale at 1.
  t.deepEqual(bounds(1), bounds(10));
  t.deepEqual(bounds(3), bounds(10));
  t.true(bounds(50).minMs > bounds(10).minMs && bounds(50).minMs < bounds(100).minMs);
});

test('timeout = max(min, max - (max - min) * log(C + 1) / log(K + 1))', (t) => {
  const b = bounds(10);
  t.is(suspicionTimeout(b, 2, 0), 9000);
  t.is(suspicionTimeout(b, 2, 1), Math.floor(9000 - 7500 * (Math.log(2) / Math.log(3))));
  t.is(suspicionTimeout(b, 2, 2), 1500);
  t.is(suspicionTimeout(b, 2, 5), 1500, 'never below the lower bound');
  t.is(suspicionTimeout(b, 0, 0), 1500, 'nobody can confirm: the lower bound at once');
});

test('the timeout shrinks monotonically with confirmations and grows with N', (t) => {
  fc.assert(
    fc.property(fc.integer({ min: 2, max: 5000 }), fc.integer({ min: 1, max: 6 }), fc.integer({ min: 0, max: 6 }), (n, k, c) => {
      const b = bounds(n);
      const now = suspicionTimeout(b, k, c);
      const more = suspicionTimeout(b, k, c + 1);
      return more <= now && now >= b.minMs && now <= b.maxMs && suspicionTimeout(bounds(n * 10), k, c) > now;
    }),
  );
  t.pass();
});

test('expected confirmations are capped by the members able to give them', (t) => {
  t.is(expectedConfirmations(2, 10), 2);
  t.is(expectedConfirmations(2, 3), 1);
  t.is(expectedConfirmations(2, 2), 0);
  t.is(expectedConfirmations(2, 1), 0);
});

test('a suspicion counts each distinct confirmer once, not its originator, and moves its deadline earlier', (t) => {
  const s = new Suspicion(1000, 4, 'c', bounds(10), 2);
  t.is(s.deadline(), 1000 + 9000);
  t.false(s.confirm('c'), 'the accuser is not its own confirmation');
  t.true(s.confirm('d'));
  t.false(s.confirm('d'));
  const afterOne = s.deadline();
  t.true(afterOne < 10_000 && afterOne > 2500);
  t.true(s.confirm('e'));
  t.is(s.deadline(), 1000 + 1500);
  t.false(s.confirm('f'), 'no more than expected');
  t.is(s.confirmations, 2);
  t.is(s.incarnation, 4);
});
