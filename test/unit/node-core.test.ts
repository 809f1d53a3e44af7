// The node core (controlplane/node) on its own: pure, deterministic, driven
// by hand. The agent and the simulator both run this object, so what is
// checked here holds for both.
import test from 'ava';
import { NodeCore } from '../../controlplane/node/node-core.ts';
import { deliverReady, emptyReady, type Ready } from '../../controlplane/node/ready.ts';
import { CLUSTER_TABLE_TOPIC, endpointsTable, networkTopic, topicAccepts } from '../../controlplane/node/topics.ts';
import { UNSIGNED_CLAIMS, mulberry32 } from '../../controlplane/membership/index.ts';

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);
const NET = endpointsTable('n1');

function core(id: string, seed = 1, networks: string[] = ['n1']): NodeCore {
  return new NodeCore({ self: { id, address: `sim://${id}` }, now: 0, rng: mulberry32(seed), claims: UNSIGNED_CLAIMS, networks });
}

/** Delivers SWIM sends at once among `cores` (none to `down`), replies included, until nothing is left. */
function pump(cores: Map<string, NodeCore>, now: number, first: Ready, from: string, down: ReadonlySet<string> = new Set()): Ready[] {
  const seen: Ready[] = [first];
  let pending = first.send.map((send) => ({ send, from }));
  while (pending.length > 0) {
    const next: typeof pending = [];
    for (const { send, from: sender } of pending) {
      const target = cores.get(send.to);
      if (target === undefined || down.has(send.to)) continue;
      const out = target.step(now, { kind: 'swim', from: sender, message: send.message });
      seen.push(out);
      next.push(...out.send.map((s) => ({ send: s, from: send.to })));
    }
    pending = next;
  }
  return seen;
}

test('a topic accepts only its own tables, and network-hosts is a cluster table', (t) => {
  t.true(topicAccepts(CLUSTER_TABLE_TOPIC, 'networks'));
  t.true(topicAccepts(CLUSTER_TABLE_TOPIC, 'network-hosts'));
  t.false(topicAccepts(CLUSTER_TABLE_TOPIC, NET), 'an endpoint entry on the cluster topic');
  t.false(topicAccepts(CLUSTER_TABLE_TOPIC, 'made-up'), 'a table nobody replicates');
  t.true(topicAccepts(networkTopic('n1'), NET));
  t.false(topicAccepts(networkTopic('n2'), NET), 'another network\'s endpoints');
  t.false(topicAccepts(networkTopic('n1'), 'networks'));
  t.false(topicAccepts('weft/other/1', 'networks'));
});

test('gossip on the wrong topic is refused and counted; the rest is applied', (t) => {
  const a = core('a');
  const b = core('b');
  const good = a.step(0, { kind: 'write', table: 'network-hosts', key: 'n1|a', value: bytes('1') });
  const stray = a.step(0, { kind: 'write', table: NET, key: 'ep', value: bytes('x') });
  t.is(good.changes.length, 1);
  // The first write goes out at once (quiet gap), the second with the next flush.
  const published = [good, stray, a.tick(5)].flatMap((r) => r.publish);
  const entries = published.flatMap((p) => p.entries);
  const ready = b.step(6, { kind: 'gossip', from: 'a', topic: CLUSTER_TABLE_TOPIC, entries });
  t.is(ready.refused, 1, 'the endpoint entry does not belong on the cluster topic');
  t.truthy(b.tables.get('network-hosts', 'n1|a'));
  t.is(b.tables.get(NET, 'ep'), undefined);
  t.is(stray.changes.length, 1);
});

test('a write after a quiet gap is published at once; writes within coalesceMs of a flush share the next batch', (t) => {
  const a = core('a');
  const first = a.step(0, { kind: 'write', table: 'networks', key: 'k0', value: bytes('0') }).publish;
  t.deepEqual(first.flatMap((p) => p.entries.map((e) => e.key)), ['k0'], 'nothing was pending and no flush was recent: no wait');
  t.deepEqual(a.step(2, { kind: 'write', table: 'networks', key: 'k1', value: bytes('1') }).publish, []);
  a.step(3, { kind: 'write', table: 'networks', key: 'k1', value: bytes('2') });
  a.step(4, { kind: 'write', table: NET, key: 'ep', value: bytes('e') });
  t.true(a.nextDeadline() <= 5, 'coalesceMs after the last flush, not after the first pending write');
  t.deepEqual(a.tick(4.9).publish, []);
  const publish = a.tick(5).publish;
  t.deepEqual(publish.map((p) => p.topic).sort(), [CLUSTER_TABLE_TOPIC, networkTopic('n1')].sort());
  const cluster = publish.find((p) => p.topic === CLUSTER_TABLE_TOPIC)!;
  t.is(cluster.entries.length, 1, 'only the newest version of k1 goes out');
  t.deepEqual(cluster.entries[0]!.value, bytes('2'));
  t.deepEqual(a.tick(10).publish, []);
  t.is(a.step(20, { kind: 'write', table: 'networks', key: 'k2', value: bytes('3') }).publish.length, 1, 'quiet again: at once');
});

test('a write storm costs at most one batch per coalesceMs, however fast the writes', (t) => {
  const a = core('a');
  let messages = 0;
  let written = 0;
  let published = 0;
  const count = (ready: Ready): void => {
    messages += ready.publish.length;
    published += ready.publish.reduce((n, p) => n + p.entries.length, 0);
  };
  // 1,000 writes of distinct keys over 100 ms, ticking whenever the core asks.
  for (let now = 0; now < 100; now += 0.1) {
    if (a.nextDeadline() <= now) count(a.tick(now));
    count(a.step(now, { kind: 'write', table: 'networks', key: `k${written++}`, value: bytes('v') }));
  }
  count(a.tick(a.nextDeadline()));
  t.is(published, written, 'every write went out');
  t.true(messages <= 100 / 5 + 2, `${messages} messages for ${written} writes`);
});

test('a Ready is performed in order: persist, topics, publish, send, member reactions, handed-back entries', (t) => {
  const a = core('a');
  a.step(0, { kind: 'add-member', member: { id: 'b', address: 'sim://b', incarnation: 0 } });
  const send = a.tick(a.nextDeadline()).send[0];
  t.truthy(send, 'a probe to b');
  const member = a.membership.member('b')!;
  const ready: Ready = {
    ...emptyReady(),
    persist: true,
    subscribe: ['t1'],
    unsubscribe: ['t0'],
    publish: [{ topic: 't1', entries: [] }],
    send: [send!],
    memberChanges: [{ member, previous: null, reaction: { visible: true, dropConnections: false, sync: false } }],
    reaped: ['c'],
    selfConflicts: [a.tables.set(0, 'networks', 'k', bytes('v')).entry as never],
  };
  const order: string[] = [];
  deliverReady(ready, {
    selfConflicts: () => order.push('selfConflicts'),
    reaped: () => order.push('reaped'),
    memberChanged: () => order.push('memberChanged'),
    send: () => order.push('send'),
    publish: () => order.push('publish'),
    unsubscribe: () => order.push('unsubscribe'),
    subscribe: () => order.push('subscribe'),
    persist: () => order.push('persist'),
  });
  t.deepEqual(order, ['persist', 'subscribe', 'unsubscribe', 'publish', 'send', 'memberChanged', 'reaped', 'selfConflicts']);
});

test('a table write asks for a save; a step that changes nothing does not', (t) => {
  const a = core('a');
  t.true(a.step(0, { kind: 'write', table: 'networks', key: 'k', value: bytes('v') }).persist);
  t.false(a.step(1, { kind: 'delete', table: 'networks', key: 'absent' }).persist);
});

test('liveness decides visibility inside the core: a dead member\'s entries are hidden, cluster-scoped ones stay', (t) => {
  const cores = new Map([['a', core('a', 1)], ['b', core('b', 2)]]);
  const a = cores.get('a')!;
  const b = cores.get('b')!;
  a.step(0, { kind: 'add-member', member: { id: 'b', address: 'sim://b', incarnation: 0 } });
  b.step(0, { kind: 'add-member', member: { id: 'a', address: 'sim://a', incarnation: 0 } });
  const writes = [b.step(0, { kind: 'write', table: NET, key: 'ep', value: bytes('e') }), b.step(0, { kind: 'write', table: 'networks', key: 'n1', value: bytes('n') })];
  for (const p of [...writes, b.tick(5)].flatMap((r) => r.publish)) a.step(6, { kind: 'gossip', from: 'b', topic: p.topic, entries: p.entries });
  t.truthy(a.tables.get(NET, 'ep'));
  // b stops answering: a's probes go unanswered until failure detection declares it dead.
  const down = new Set(['b']);
  const changes: Ready['memberChanges'] = [];
  for (let now = 10; now < 60_000 && a.membership.member('b')?.state !== 'dead'; ) {
    now = Math.max(now, a.nextDeadline());
    for (const ready of pump(cores, now, a.tick(now), 'a', down)) changes.push(...ready.memberChanges);
    now += 1;
  }
  t.is(a.membership.member('b')?.state, 'dead');
  const dead = changes.find((c) => c.member.id === 'b' && c.member.state === 'dead');
  t.deepEqual(dead?.reaction, { visible: false, dropConnections: true, sync: false });
  t.is(a.tables.get(NET, 'ep'), undefined, 'hidden from consumers');
  t.is(a.tables.stored(NET).length, 1, 'kept for when it comes back');
  t.truthy(a.tables.get('networks', 'n1'), 'networks outlive their writer');
});

test('sync: the scope includes network-hosts, and one exchange brings both sides level', (t) => {
  const a = core('a');
  const b = core('b');
  t.true(a.scope().includes('network-hosts'));
  a.step(0, { kind: 'write', table: 'network-hosts', key: 'n1|a', value: bytes('1') });
  b.step(0, { kind: 'write', table: NET, key: 'ep-b', value: bytes('b') });
  const digest = a.digest();
  const reply = b.answer(1, digest);
  const close = a.step(2, { kind: 'sync-reply', from: 'b', digest, reply }).syncClose;
  b.step(3, { kind: 'sync-finish', from: 'a', entries: close });
  t.truthy(a.tables.get(NET, 'ep-b'));
  t.truthy(b.tables.get('network-hosts', 'n1|a'));
});

test('sync-finish outside our scope is refused, except our own entries', (t) => {
  const a = core('a', 1, []);
  const b = core('b', 2, ['n1']);
  const entries = b.step(0, { kind: 'write', table: NET, key: 'ep-b', value: bytes('b') }).publish.flatMap((p) => p.entries);
  const ready = a.step(6, { kind: 'sync-finish', from: 'b', entries });
  t.is(ready.refused, 1);
  t.is(a.tables.get(NET, 'ep-b'), undefined);
});

test('same seed, same inputs: the same Ready sequence', (t) => {
  const run = (): string => {
    const a = core('a', 7);
    const out: unknown[] = [];
    out.push(a.step(0, { kind: 'add-member', member: { id: 'b', address: 'sim://b', incarnation: 0 } }));
    out.push(a.step(0, { kind: 'add-member', member: { id: 'c', address: 'sim://c', incarnation: 0 } }));
    for (let i = 0; i < 20; i++) out.push(a.tick(a.nextDeadline()));
    return JSON.stringify(out.map((r) => (r as Ready).send.map((s) => [s.to, s.message.kind])));
  };
  t.is(run(), run());
});

test('a node that leaves a network forgets the others\' entries of it, keeps its own, and no sync or gossip brings them back', (t) => {
  const a = core('a');
  const b = core('b', 2);
  const fromB = b.step(0, { kind: 'write', table: NET, key: 'ep-b', value: bytes('b') }).publish.flatMap((p) => p.entries);
  a.step(0, { kind: 'write', table: NET, key: 'ep-a', value: bytes('a') });
  a.step(6, { kind: 'gossip', from: 'b', topic: networkTopic('n1'), entries: fromB });
  t.truthy(a.tables.get(NET, 'ep-b'));
  a.step(7, { kind: 'delete', table: NET, key: 'ep-a' });
  const left = a.step(8, { kind: 'leave-network', network: 'n1' });
  t.deepEqual(left.unsubscribe, [networkTopic('n1')]);
  t.deepEqual(left.changes.map((c) => [c.op, c.key]), [['remove', 'ep-b']], 'consumers drop the stale view');
  t.is(a.tables.get(NET, 'ep-b'), undefined);
  t.true(a.scope().includes(NET), 'its own tombstone still syncs');
  // A sync with a host still on the network: a's tombstone reaches b, b's entries stay with b.
  const digest = a.digest();
  const reply = b.answer(9, digest);
  t.true(reply.entries.some((e) => e.owner === 'b'), 'b offers its bucket');
  const close = a.step(10, { kind: 'sync-reply', from: 'b', digest, reply }).syncClose;
  b.step(11, { kind: 'sync-finish', from: 'a', entries: close });
  t.is(a.tables.get(NET, 'ep-b'), undefined);
  t.is(b.tables.get(NET, 'ep-a'), undefined, 'the delete reached b');
  a.step(12, { kind: 'gossip', from: 'b', topic: networkTopic('n1'), entries: fromB });
  t.is(a.tables.get(NET, 'ep-b'), undefined, 'a late gossip message on the old topic');
  // Joining again: the next sync brings the network's entries back.
  a.step(13, { kind: 'join-network', network: 'n1' });
  const again = a.digest();
  a.step(14, { kind: 'sync-reply', from: 'b', digest: again, reply: b.answer(14, again) });
  t.truthy(a.tables.get(NET, 'ep-b'));
});

test('a restarted node still holding a live endpoint of its own takes everyone\'s entries before its overlay rejoins the network', (t) => {
  const restarted = core('a', 1, []);
  restarted.step(0, { kind: 'write', table: NET, key: 'ep-a', value: bytes('a') });
  const b = core('b', 2);
  b.step(0, { kind: 'write', table: NET, key: 'ep-b', value: bytes('b') });
  b.step(1, { kind: 'delete', table: NET, key: 'ep-b' }); // the delete it missed while it was down
  const digest = restarted.digest();
  restarted.step(2, { kind: 'sync-reply', from: 'b', digest, reply: b.answer(2, digest) });
  t.true(restarted.tables.bucketEntries(NET, 'b').some((e) => e.key === 'ep-b' && e.deleted), 'b\'s tombstone arrived');
});
