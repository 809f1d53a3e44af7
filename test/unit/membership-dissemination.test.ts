import test from 'ava';
import { BroadcastQueue, estimateUpdateBytes, retransmitLimit } from '../../controlplane/membership/broadcast-queue.ts';
import type { MemberState, MemberUpdate } from '../../controlplane/membership/messages.ts';

const u = (node: string, state: MemberState = 'alive', incarnation = 0): MemberUpdate => ({
  node,
  address: `198.18.0.${node.length}:7946`,
  incarnation,
  state,
  from: node,
});

test('the retransmit limit scales with log10(N + 1)', (t) => {
  t.is(retransmitLimit(4, 1), 4);
  t.is(retransmitLimit(4, 9), 4);
  t.is(retransmitLimit(4, 10), 8);
  t.is(retransmitLimit(4, 99), 8);
  t.is(retransmitLimit(4, 100), 12);
  t.is(retransmitLimit(4, 1000), 16);
  t.is(retransmitLimit(3, 1000), 12);
});

test('an update is transmitted exactly `limit` times, then dropped', (t) => {
  for (const n of [10, 100, 1000]) {
    const q = new BroadcastQueue();
    q.enqueue(u('b'));
    const limit = retransmitLimit(4, n);
    let sent = 0;
    for (let i = 0; i < 100; i++) sent += q.take(1400, limit).length;
    t.is(sent, limit);
    t.is(q.size, 0);
  }
});

test('a newer update about the same node replaces the queued one and starts afresh', (t) => {
  const q = new BroadcastQueue();
  q.enqueue(u('b', 'suspect', 1));
  q.take(1400, 8);
  q.take(1400, 8);
  q.enqueue(u('b', 'alive', 2));
  t.is(q.size, 1);
  let sent: MemberUpdate[] = [];
  for (let i = 0; i < 20; i++) sent = sent.concat(q.take(1400, 8));
  t.is(sent.length, 8);
  for (const s of sent) t.like(s, { state: 'alive', incarnation: 2 });
});

test('least-transmitted updates go first, so fresh news is not starved', (t) => {
  const q = new BroadcastQueue();
  const big = (node: string): MemberUpdate => ({ ...u(node), address: 'x'.repeat(200) });
  for (const node of ['b', 'c', 'd', 'e', 'f']) q.enqueue(big(node));
  const one = estimateUpdateBytes(big('b'));
  const first = q.take(one * 2, 10).map((x) => x.node);
  t.deepEqual(first, ['b', 'c']);
  q.enqueue(big('g'));
  t.deepEqual(q.take(one * 2, 10).map((x) => x.node), ['d', 'e']);
  t.deepEqual(q.take(one * 2, 10).map((x) => x.node), ['f', 'g']);
  t.deepEqual(q.take(one * 2, 10).map((x) => x.node), ['b', 'c']);
});

test('a message never exceeds its byte budget', (t) => {
  const q = new BroadcastQueue();
  for (let i = 0; i < 200; i++) q.enqueue(u(`node-${i}`));
  const taken = q.take(1400, 8);
  const bytes = taken.reduce((sum, x) => sum + estimateUpdateBytes(x), 0);
  t.true(taken.length > 10);
  t.true(bytes <= 1400);
  t.true(bytes > 1400 - estimateUpdateBytes(u('node-199')));
});
