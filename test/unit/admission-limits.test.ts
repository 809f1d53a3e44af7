// The admission port's limits and the join proofs, without a network.
import test from 'ava';
import { ConcurrencyLimiter, KeyedRateLimiter } from '../../controlplane/security/rate-limit.ts';
import { clientProof, proofsEqual, serverProof, type JoinTranscript } from '../../controlplane/security/join-proof.ts';

test('a token bucket allows its burst, then its rate, per key', (t) => {
  const limiter = new KeyedRateLimiter({ burst: 3, perSecond: 1 });
  t.deepEqual([1, 2, 3, 4].map(() => limiter.take('a', 0)), [true, true, true, false]);
  t.true(limiter.take('b', 0), 'another address has its own bucket');
  t.false(limiter.take('a', 500));
  t.true(limiter.take('a', 1_600));
  t.false(limiter.take('a', 1_700));
  t.true(limiter.take('a', 100_000) && limiter.take('a', 100_000) && limiter.take('a', 100_000));
  t.false(limiter.take('a', 100_000), 'refill stops at the burst');
});

test('the rate limiter keeps a bounded number of keys', (t) => {
  const limiter = new KeyedRateLimiter({ burst: 1, perSecond: 1 }, 100);
  for (let i = 0; i < 10_000; i++) limiter.take(`10.0.${i >> 8}.${i & 255}`, 0);
  t.is(limiter.size, 100);
});

test('the concurrency limiter caps per key and in total, and releases', (t) => {
  const open = new ConcurrencyLimiter(2, 3);
  t.deepEqual([open.acquire('a'), open.acquire('a'), open.acquire('a')], ['ok', 'ok', 'per-address']);
  t.is(open.acquire('b'), 'ok');
  t.is(open.acquire('c'), 'total');
  open.release('a');
  t.is(open.acquire('c'), 'ok');
  open.release('nobody');
  t.is(open.count, 3);
});

const transcript = (overrides: Partial<JoinTranscript> = {}): JoinTranscript => ({
  clientNonce: new Uint8Array(32).fill(1),
  serverNonce: new Uint8Array(32).fill(2),
  serverCertificate: new Uint8Array([3, 4, 5]),
  ...overrides,
});

test('join proofs depend on the secret, both nonces and the server certificate, and differ by role', (t) => {
  const secret = new Uint8Array(32).fill(9);
  const base = serverProof(secret, transcript());
  t.true(proofsEqual(base, serverProof(secret, transcript())));
  t.false(proofsEqual(base, serverProof(new Uint8Array(32).fill(8), transcript())), 'another secret');
  t.false(proofsEqual(base, serverProof(secret, transcript({ clientNonce: new Uint8Array(32) }))), 'another client nonce');
  t.false(proofsEqual(base, serverProof(secret, transcript({ serverNonce: new Uint8Array(32) }))), 'another server nonce');
  t.false(proofsEqual(base, serverProof(secret, transcript({ serverCertificate: new Uint8Array([3, 4]) }))), 'another certificate (a relay)');
  const client = clientProof(secret, transcript(), new Uint8Array([1]), new Uint8Array([2]));
  t.false(proofsEqual(base, client), 'a server proof cannot be reflected as a client proof');
  t.false(proofsEqual(client, clientProof(secret, transcript(), new Uint8Array([1, 2]), new Uint8Array([]))), 'key fields are length-prefixed');
  t.false(proofsEqual(base, base.subarray(0, 16)));
});
