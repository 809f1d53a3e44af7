// Behaviour of one Membership instance, driven in virtual time by a tiny
// harness that plays its peers (answering pings and ping-reqs instantly).
import test from 'ava';
import type { MembershipConfig } from '../../controlplane/membership/config.ts';
import { DEFAULT_MEMBERSHIP_CONFIG } from '../../controlplane/membership/config.ts';
import type { Effect } from '../../controlplane/membership/effects.ts';
import type { MemberView } from '../../controlplane/membership/member-table.ts';
import { Membership } from '../../controlplane/membership/membership.ts';
import { UNSIGNED_CLAIMS } from '../../controlplane/membership/claim-signing.ts';
import type { MemberState, MemberUpdate, PingReq, SwimMessage } from '../../controlplane/membership/messages.ts';
import { mulberry32 } from '../../controlplane/membership/rng.ts';

type Send = Extract<Effect, { kind: 'send' }>;
interface Sent extends Send {
  at: number;
}
interface Change {
  at: number;
  member: MemberView;
  previous: MemberState | null;
}

const PI = DEFAULT_MEMBERSHIP_CONFIG.probeIntervalMs;
const PT = DEFAULT_MEMBERSHIP_CONFIG.probeTimeoutMs;

class Harness {
  readonly m: Membership;
  now = 0;
  readonly sent: Sent[] = [];
  readonly changes: Change[] = [];
  readonly reaped: { at: number; id: string }[] = [];
  /** Crashed peers: answer nothing, and relays get nothing from them. */
  readonly down = new Set<string>();
  /** Peers that do not hear our direct pings but are fine for everyone else. */
  readonly unreachable = new Set<string>();
  /** Nothing we send arrives: we are the broken node. */
  isolated = false;

  constructor(peers: string[], config: Partial<MembershipConfig> = {}, seed = 1) {
    this.m = new Membership({ self: { id: 'a', address: 'addr-a' }, config, rng: mulberry32(seed), now: 0, claims: UNSIGNED_CLAIMS });
    for (const id of peers) this.m.addMember(0, { id, address: `addr-${id}`, incarnation: 0 });
  }

  runUntil(until: number): void {
    for (;;) {
      const next = Math.max(this.now, this.m.nextDeadline());
      if (next > until) break;
      this.now = next;
      this.process(this.m.tick(next));
    }
    this.now = until;
  }

  deliver(from: string, message: SwimMessage): void {
    this.process(this.m.handle(this.now, from, message));
  }

  gossip(from: string, ...updates: MemberUpdate[]): void {
    this.deliver(from, { kind: 'gossip', updates });
  }

  process(effects: Effect[]): void {
    for (const effect of effects) {
      if (effect.kind === 'member-changed') this.changes.push({ at: this.now, member: effect.member, previous: effect.previous });
      else if (effect.kind === 'member-reaped') this.reaped.push({ at: this.now, id: effect.id });
      else {
        this.sent.push({ ...effect, at: this.now });
        this.respond(effect.to, effect.message);
      }
    }
  }

  respond(to: string, message: SwimMessage): void {
    if (this.isolated || this.down.has(to)) return;
    if (message.kind === 'ping' && !this.unreachable.has(to)) {
      this.deliver(to, { kind: 'ack', seq: message.seq, updates: [] });
    } else if (message.kind === 'pingReq') {
      if (!this.down.has(message.target)) this.deliver(to, { kind: 'ack', seq: message.seq, updates: [] });
      else if (message.nack) this.deliver(to, { kind: 'nack', seq: message.seq, updates: [] });
    }
  }

  /** Pings that start a probe (a retry reuses its sequence number). */
  probes(): Sent[] {
    const seen = new Set<number>();
    return this.sent.filter((s) => {
      if (s.message.kind !== 'ping' || seen.has(s.message.seq)) return false;
      seen.add(s.message.seq);
      return true;
    });
  }

  firstChange(id: string, state: MemberState): Change | undefined {
    return this.changes.find((c) => c.member.id === id && c.member.state === state);
  }

  state(id: string): MemberState | undefined {
    return this.m.member(id)?.state;
  }
}

const update = (node: string, state: MemberState, incarnation: number, from: string): MemberUpdate => ({
  node,
  address: `addr-${node}`,
  incarnation,
  state,
  from,
});

test('probes every member once per round, in a reshuffled order', (t) => {
  const peers = ['b', 'c', 'd', 'e', 'f'];
  const h = new Harness(peers);
  h.runUntil(20 * PI);
  const targets = h.probes().map((p) => p.to);
  t.true(targets.length >= 15);
  const rounds = [targets.slice(0, 5), targets.slice(5, 10), targets.slice(10, 15)];
  for (const round of rounds) t.deepEqual([...round].sort(), peers);
  t.notDeepEqual(rounds[0], rounds[1], 'the order is reshuffled between rounds');
});

test('healthy peers: direct acks only, no ping-req, nobody suspected', (t) => {
  const h = new Harness(['b', 'c', 'd', 'e']);
  h.runUntil(60_000);
  t.true(h.probes().length >= 100);
  t.is(h.sent.filter((s) => s.message.kind === 'pingReq').length, 0);
  t.is(h.changes.filter((c) => c.member.state !== 'alive').length, 0);
  t.is(h.m.awarenessScore, 0);
});

test('a missed direct ack sends ping-req to k other members, and a relayed ack prevents suspicion', (t) => {
  const h = new Harness(['b', 'c', 'd', 'e', 'f']);
  h.unreachable.add('b');
  h.runUntil(10 * PI);
  const probeOfB = h.probes().find((p) => p.to === 'b');
  if (probeOfB === undefined) return t.fail('b was never probed');
  const seq = probeOfB.message.kind === 'ping' ? probeOfB.message.seq : -1;
  const requests = h.sent.filter((s) => s.message.kind === 'pingReq' && s.message.seq === seq);
  t.is(requests.length, DEFAULT_MEMBERSHIP_CONFIG.indirectChecks);
  t.is(new Set(requests.map((r) => r.to)).size, requests.length, 'distinct relays');
  for (const r of requests) {
    t.not(r.to, 'b');
    t.is(r.at, probeOfB.at + PT, 'indirect round starts at the probe timeout');
    t.like(r.message, { kind: 'pingReq', target: 'b', targetAddress: 'addr-b', sourceAddress: 'addr-a', nack: true });
  }
  const retry = h.sent.filter((s) => s.to === 'b' && s.message.kind === 'ping' && s.message.seq === seq);
  t.deepEqual(retry.map((s) => s.at), [probeOfB.at, probeOfB.at + PT], 'the direct ping is retried alongside');
  h.runUntil(60_000);
  t.is(h.firstChange('b', 'suspect'), undefined);
  t.is(h.state('b'), 'alive');
});

test('a probe nobody can answer makes the target suspect, then dead after the suspicion timeout', (t) => {
  const h = new Harness(['b', 'c', 'd', 'e']);
  h.down.add('b');
  h.runUntil(60_000);
  const suspect = h.firstChange('b', 'suspect');
  const dead = h.firstChange('b', 'dead');
  if (suspect === undefined || dead === undefined) return t.fail('b was not declared');
  const probeOfB = h.probes().find((p) => p.to === 'b');
  t.is(suspect.at, (probeOfB?.at ?? NaN) + PI, 'suspected when the probe interval ends');
  // Nobody confirms (our own later probes do not count): the upper bound, 6 x 1.5 s.
  t.is(dead.at - suspect.at, 9000);
  // The verdict is gossiped with us as its author.
  const gossiped = h.sent.flatMap((s) => s.message.updates).find((u) => u.node === 'b' && u.state === 'dead');
  t.like(gossiped, { from: 'a', incarnation: 0 });
});

test('independent confirmations shrink the suspicion timeout, duplicates do not', (t) => {
  const h = new Harness(['b', 'c', 'd', 'e']);
  h.runUntil(1000);
  h.gossip('c', update('b', 'suspect', 0, 'c'));
  t.is(h.state('b'), 'suspect');
  h.gossip('d', update('b', 'suspect', 0, 'd'));
  h.gossip('c', update('b', 'suspect', 0, 'c'));
  h.gossip('d', update('b', 'suspect', 0, 'd'));
  // One confirmation (d): 9000 - 7500 * log 2 / log 3 = 4267 ms.
  h.runUntil(1000 + 4266);
  t.is(h.state('b'), 'suspect');
  h.gossip('e', update('b', 'suspect', 0, 'e'));
  // Two confirmations reach the lower bound, 1.5 s after the start: due now.
  h.runUntil(1000 + 4266);
  t.is(h.state('b'), 'dead');
  t.is(h.firstChange('b', 'dead')?.at, 1000 + 4266);
});

test('two confirmations inside the lower bound declare death exactly at the lower bound', (t) => {
  const h = new Harness(['b', 'c', 'd', 'e']);
  h.runUntil(1000);
  h.gossip('c', update('b', 'suspect', 0, 'c'));
  h.gossip('d', update('b', 'suspect', 0, 'd'));
  h.gossip('e', update('b', 'suspect', 0, 'e'));
  h.runUntil(1000 + 1499);
  t.is(h.state('b'), 'suspect');
  h.runUntil(1000 + 1500);
  t.is(h.state('b'), 'dead');
});

test('a suspected node refutes: bumps its incarnation, broadcasts alive, raises its health score', (t) => {
  const h = new Harness(['b', 'c', 'd']);
  h.runUntil(1000);
  h.gossip('b', update('a', 'suspect', 0, 'b'));
  const self = h.m.member('a');
  t.like(self, { state: 'alive', incarnation: 1 });
  t.is(h.m.awarenessScore, 1);
  h.runUntil(1300);
  const announced = h.sent.filter((s) => s.at >= 1000).flatMap((s) => s.message.updates).filter((u) => u.node === 'a');
  t.true(announced.length > 0);
  for (const u of announced) t.like(u, { state: 'alive', incarnation: 1, from: 'a' });
  // A death verdict at our new incarnation is refuted again.
  h.gossip('c', update('a', 'dead', 1, 'c'));
  t.is(h.m.member('a')?.incarnation, 2);
  // A stale accusation (older incarnation) does not bump it.
  h.gossip('d', update('a', 'suspect', 0, 'd'));
  t.is(h.m.member('a')?.incarnation, 2);
});

test('others accept alive with a higher incarnation over a suspicion, and reject lower or equal', (t) => {
  const h = new Harness(['b', 'c', 'd']);
  h.gossip('c', update('b', 'suspect', 3, 'c'));
  t.like(h.m.member('b'), { state: 'suspect', incarnation: 3 });
  h.gossip('d', update('b', 'alive', 2, 'b'));
  t.like(h.m.member('b'), { state: 'suspect', incarnation: 3 });
  h.gossip('d', update('b', 'alive', 3, 'b'));
  t.like(h.m.member('b'), { state: 'suspect', incarnation: 3 });
  h.gossip('b', update('b', 'alive', 4, 'b'));
  t.like(h.m.member('b'), { state: 'alive', incarnation: 4 });
  // The old suspicion is gone for good: its timer does not fire.
  h.gossip('c', update('b', 'suspect', 3, 'c'));
  h.runUntil(60_000);
  t.like(h.m.member('b'), { state: 'alive', incarnation: 4 });
  t.is(h.firstChange('b', 'dead'), undefined);
});

test('pings to a suspect carry the suspicion, so it can refute (buddy system)', (t) => {
  const h = new Harness(['b', 'c', 'd', 'e']);
  h.gossip('c', update('b', 'suspect', 0, 'c'));
  h.runUntil(5 * PI);
  const pingsToB = h.sent.filter((s) => s.to === 'b' && s.message.kind === 'ping');
  t.true(pingsToB.length > 0);
  for (const ping of pingsToB) t.truthy(ping.message.updates.find((u) => u.node === 'b' && u.state === 'suspect'));
});

test('relays a ping-req: pings the target, relays its ack, or nacks after the probe timeout', (t) => {
  const h = new Harness(['b', 'c', 'd']);
  const request: PingReq = { kind: 'pingReq', seq: 77, target: 'c', targetAddress: 'addr-c', sourceAddress: 'addr-b', nack: true, updates: [] };
  const first = h.m.handle(100, 'b', request);
  const ping = first.find((e): e is Send => e.kind === 'send' && e.message.kind === 'ping');
  if (ping?.message.kind !== 'ping') return t.fail('no ping to the target');
  t.like(ping, { to: 'c', address: 'addr-c' });
  t.is(ping.message.target, 'c');
  const relayed = h.m.handle(110, 'c', { kind: 'ack', seq: ping.message.seq, updates: [] });
  t.like(relayed.find((e) => e.kind === 'send'), { to: 'b', address: 'addr-b', message: { kind: 'ack', seq: 77 } });

  const second = h.m.handle(200, 'b', { ...request, seq: 78 });
  t.is(second.filter((e) => e.kind === 'send').length, 1);
  const early = h.m.tick(200 + PT - 1).filter((e) => e.kind === 'send' && e.message.kind === 'nack');
  t.is(early.length, 0);
  const nack = h.m.tick(200 + PT).find((e) => e.kind === 'send' && e.message.kind === 'nack');
  t.like(nack, { to: 'b', address: 'addr-b', message: { kind: 'nack', seq: 78 } });
});

test('a ping meant for another node is not answered', (t) => {
  const h = new Harness(['b']);
  const effects = h.m.handle(10, 'b', { kind: 'ping', seq: 1, target: 'z', sourceAddress: 'addr-b', updates: [] });
  t.is(effects.filter((e) => e.kind === 'send').length, 0);
  const answered = h.m.handle(10, 'b', { kind: 'ping', seq: 2, target: 'a', sourceAddress: 'addr-b', updates: [] });
  t.like(answered.find((e) => e.kind === 'send'), { to: 'b', address: 'addr-b', message: { kind: 'ack', seq: 2 } });
});

test('a member that leaves is marked left, not dead, and is no longer probed', (t) => {
  const h = new Harness(['b', 'c', 'd']);
  h.runUntil(2000);
  h.gossip('b', update('b', 'left', 1, 'b'));
  t.like(h.m.member('b'), { state: 'left', incarnation: 1 });
  h.down.add('b');
  const before = h.sent.length;
  h.gossip('c', update('b', 'dead', 1, 'c'));
  h.runUntil(60_000);
  t.is(h.state('b'), 'left');
  t.is(h.firstChange('b', 'dead'), undefined);
  t.is(h.sent.slice(before).filter((s) => s.to === 'b' && s.message.kind !== 'gossip').length, 0);
});

test('leave() announces left with a bumped incarnation and stops probing', (t) => {
  const h = new Harness(['b', 'c', 'd', 'e']);
  h.runUntil(2000);
  const effects = h.m.leave(2000);
  h.process(effects);
  t.like(h.m.member('a'), { state: 'left', incarnation: 1 });
  const sends = effects.filter((e): e is Send => e.kind === 'send');
  t.true(sends.length > 0, 'the news goes out at once');
  for (const s of sends) t.truthy(s.message.updates.find((u) => u.node === 'a' && u.state === 'left' && u.incarnation === 1));
  const before = h.sent.length;
  h.runUntil(30_000);
  t.is(h.sent.slice(before).filter((s) => s.message.kind === 'ping' || s.message.kind === 'pingReq').length, 0);
  t.is(h.m.pendingBroadcasts, 0, 'the queue drains, so the host knows when it may stop');
  // A left node does not fight accusations.
  h.gossip('b', update('a', 'dead', 1, 'b'));
  t.like(h.m.member('a'), { state: 'left', incarnation: 1 });
});

test('a dead member is kept until the reap time, can return with a higher incarnation, and is then forgotten', (t) => {
  const reapMs = 60_000;
  const h = new Harness(['b', 'c', 'd', 'e'], { reapMs });
  h.down.add('b');
  h.runUntil(30_000);
  const dead = h.firstChange('b', 'dead');
  if (dead === undefined) return t.fail('b not declared dead');
  h.runUntil(dead.at + reapMs - 1);
  t.is(h.state('b'), 'dead');
  h.gossip('c', update('b', 'alive', 0, 'b'));
  t.is(h.state('b'), 'dead', 'a stale alive does not resurrect it');
  h.runUntil(dead.at + reapMs);
  t.is(h.m.member('b'), undefined);
  t.deepEqual(h.reaped, [{ at: dead.at + reapMs, id: 'b' }]);

  // Reaped members are strangers again: an accusation is ignored, an alive admitted.
  h.gossip('c', update('b', 'dead', 0, 'c'));
  t.is(h.m.member('b'), undefined);
  h.gossip('b', update('b', 'alive', 0, 'b'));
  t.is(h.state('b'), 'alive');
});

test('a dead member that comes back with a higher incarnation is alive again before the reap', (t) => {
  const h = new Harness(['b', 'c', 'd', 'e']);
  h.down.add('b');
  h.runUntil(30_000);
  t.is(h.state('b'), 'dead');
  h.down.delete('b');
  h.gossip('b', update('b', 'alive', 1, 'b'));
  t.like(h.m.member('b'), { state: 'alive', incarnation: 1, stateChangedAt: 30_000 });
  t.like(h.changes.at(-1), { previous: 'dead', member: { id: 'b', state: 'alive' } });
});

test('mergeSnapshot: remote dead becomes local suspect, strangers are added, claims about us are refuted', (t) => {
  const h = new Harness(['b', 'c']);
  h.process(
    h.m.mergeSnapshot(100, {
      from: 'c',
      members: [
        { node: 'a', address: 'addr-a', incarnation: 0, state: 'dead' },
        { node: 'b', address: 'addr-b', incarnation: 0, state: 'dead' },
        { node: 'x', address: 'addr-x', incarnation: 5, state: 'alive' },
        { node: 'y', address: 'addr-y', incarnation: 0, state: 'dead' },
      ],
    }),
  );
  t.is(h.state('b'), 'suspect');
  t.like(h.m.member('x'), { state: 'alive', incarnation: 5, address: 'addr-x' });
  t.is(h.m.member('y'), undefined);
  t.like(h.m.member('a'), { state: 'alive', incarnation: 1 });
  const snapshot = h.m.snapshot();
  t.is(snapshot.from, 'a');
  t.deepEqual(
    snapshot.members.map((m) => `${m.node}:${m.state}:${m.incarnation}`).sort(),
    ['a:alive:1', 'b:suspect:0', 'c:alive:0', 'x:alive:5'],
  );
});

test('a restarted node learns its old incarnation and outbids it', (t) => {
  const h = new Harness(['b', 'c']);
  h.gossip('b', update('a', 'alive', 7, 'a'));
  t.is(h.m.member('a')?.incarnation, 8);
  t.is(h.m.awarenessScore, 0, 'a conflict about our identity is not a health problem');
});

test('after every tick the next deadline is in the future (the host never spins)', (t) => {
  const h = new Harness(['b', 'c', 'd', 'e', 'f']);
  h.down.add('c');
  h.unreachable.add('d');
  let now = 0;
  for (let i = 0; i < 2000; i++) {
    now = Math.max(now, h.m.nextDeadline());
    h.now = now;
    h.process(h.m.tick(now));
    t.true(h.m.nextDeadline() > now);
  }
});

test('a peer still holding a refuted accusation gets our current alive directly', (t) => {
  const h = new Harness(['b', 'c', 'd']);
  h.gossip('b', update('a', 'suspect', 0, 'b'));
  t.is(h.m.member('a')?.incarnation, 1);
  h.runUntil(10_000);
  const before = h.sent.length;
  // c missed the refutation and its message still carries the old verdict.
  h.gossip('c', update('a', 'dead', 0, 'b'));
  t.is(h.m.member('a')?.incarnation, 1, 'no new incarnation for a stale claim');
  const reply = h.sent.slice(before).find((s) => s.to === 'c');
  t.like(reply, { address: 'addr-c', message: { kind: 'gossip' } });
  t.like(reply?.message.updates[0], { node: 'a', state: 'alive', incarnation: 1 });
});

test('an ack to a member we hold dead tells it so, letting it refute', (t) => {
  const h = new Harness(['b', 'c', 'd', 'e']);
  h.down.add('b');
  h.runUntil(30_000);
  t.is(h.state('b'), 'dead');
  const effects = h.m.handle(30_000, 'b', { kind: 'ping', seq: 5, target: 'a', sourceAddress: 'addr-b', updates: [] });
  const ack = effects.find((e): e is Send => e.kind === 'send');
  t.like(ack, { to: 'b', message: { kind: 'ack', seq: 5 } });
  t.like(ack?.message.updates.find((u) => u.node === 'b'), { state: 'dead', incarnation: 0 });
});

test('malformed updates (empty ID, unknown state, bad incarnation) are dropped', (t) => {
  const h = new Harness(['b']);
  h.gossip('b', { ...update('', 'alive', 0, 'b') });
  h.gossip('b', { ...update('x', 'alive', 0, 'x'), state: 'zombie' as MemberState });
  h.gossip('b', update('y', 'alive', -1, 'y'));
  h.gossip('b', update('z', 'alive', 1.5, 'z'));
  h.gossip('b', update('b', 'suspect', 2 ** 32, 'c'));
  t.deepEqual(h.m.members().map((m) => `${m.id}:${m.state}`), ['a:alive', 'b:alive']);
});
