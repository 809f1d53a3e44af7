import test from 'ava';
import { Awareness } from '../../controlplane/membership/awareness.ts';
import { DEFAULT_MEMBERSHIP_CONFIG, resolveConfig } from '../../controlplane/membership/config.ts';
import type { Effect } from '../../controlplane/membership/effects.ts';
import { Membership } from '../../controlplane/membership/membership.ts';
import { UNSIGNED_CLAIMS } from '../../controlplane/membership/claim-signing.ts';
import type { SwimMessage } from '../../controlplane/membership/messages.ts';
import { mulberry32 } from '../../controlplane/membership/rng.ts';

const PI = DEFAULT_MEMBERSHIP_CONFIG.probeIntervalMs;

test('the health score is clamped to [0, max multiplier - 1] and scales durations by score + 1', (t) => {
  const a = new Awareness(8);
  t.is(a.scale(500), 500);
  a.apply(3);
  t.is(a.scale(500), 2000);
  a.apply(100);
  t.is(a.score, 7);
  t.is(a.scale(500), 4000);
  a.apply(-100);
  t.is(a.score, 0);
});

test('config validation rejects an interval too short for the indirect round', (t) => {
  t.throws(() => resolveConfig({ probeIntervalMs: 300, probeTimeoutMs: 200 }), { instanceOf: RangeError });
  t.throws(() => resolveConfig({ gossipNodes: -1 }), { instanceOf: RangeError });
  t.is(resolveConfig({ indirectChecks: 5 }).indirectChecks, 5);
});

/**
 * Peers answer only when `healthy`; relays then neither ack nor nack, which
 * is what a node with a broken network of its own experiences.
 */
function isolatedNode() {
  const peers = Array.from({ length: 12 }, (_, i) => `p${i}`);
  const m = new Membership({ self: { id: 'a', address: 'addr-a' }, rng: mulberry32(3), now: 0, claims: UNSIGNED_CLAIMS });
  for (const id of peers) m.addMember(0, { id, address: `addr-${id}`, incarnation: 0 });
  const state = { now: 0, healthy: false, probeStarts: [] as { at: number; score: number }[] };
  const seen = new Set<number>();
  const process = (effects: Effect[]): void => {
    for (const e of effects) {
      if (e.kind !== 'send' || e.message.kind !== 'ping') continue;
      if (!seen.has(e.message.seq)) {
        seen.add(e.message.seq);
        state.probeStarts.push({ at: state.now, score: m.awarenessScore });
      }
      if (state.healthy) {
        const ack: SwimMessage = { kind: 'ack', seq: e.message.seq, updates: [] };
        process(m.handle(state.now, e.to, ack));
      }
    }
  };
  const runUntil = (until: number): void => {
    for (;;) {
      const next = Math.max(state.now, m.nextDeadline());
      if (next > until) break;
      state.now = next;
      process(m.tick(next));
    }
    state.now = until;
  };
  return { m, state, runUntil };
}

test('missed acks raise the score and stretch the probe interval; successful probes bring it back down', (t) => {
  const { m, state, runUntil } = isolatedNode();
  runUntil(3 * PI);
  t.true(m.awarenessScore > 0, 'a failed probe with silent relays raises the score');
  runUntil(30_000);
  t.is(m.awarenessScore, 7, 'saturates at awarenessMaxMultiplier - 1');
  // Each probe interval is the base interval scaled by (score + 1) at its start.
  for (let i = 1; i < state.probeStarts.length; i++) {
    const prev = state.probeStarts[i - 1];
    const cur = state.probeStarts[i];
    if (prev === undefined || cur === undefined) continue;
    t.is(cur.at - prev.at, PI * (prev.score + 1));
  }
  const stretched = state.probeStarts.at(-1);
  t.is(stretched?.score, 7);

  state.healthy = true;
  const healedAt = state.probeStarts.length;
  runUntil(80_000);
  t.is(m.awarenessScore, 0, 'recovers');
  const after = state.probeStarts.slice(healedAt).map((p) => p.score);
  t.deepEqual(after.slice(0, 8), [7, 6, 5, 4, 3, 2, 1, 0], 'one step down per direct ack');
  const last = state.probeStarts.slice(-2);
  t.is((last[1]?.at ?? 0) - (last[0]?.at ?? 0), PI, 'back to the base interval');
});

test('a failed probe answered by nacks does not raise the score: the target is down, not us', (t) => {
  const m = new Membership({ self: { id: 'a', address: 'addr-a' }, rng: mulberry32(5), now: 0, claims: UNSIGNED_CLAIMS });
  for (const id of ['b', 'c', 'd', 'e']) m.addMember(0, { id, address: `addr-${id}`, incarnation: 0 });
  let now = 0;
  const process = (effects: Effect[]): void => {
    for (const e of effects) {
      if (e.kind !== 'send') continue;
      const msg = e.message;
      if (msg.kind === 'ping' && e.to !== 'b') process(m.handle(now, e.to, { kind: 'ack', seq: msg.seq, updates: [] }));
      if (msg.kind === 'pingReq') process(m.handle(now, e.to, { kind: 'nack', seq: msg.seq, updates: [] }));
    }
  };
  let sawSuspect = false;
  while (now < 20_000) {
    now = Math.max(now, m.nextDeadline());
    process(m.tick(now));
    if (m.member('b')?.state === 'suspect') sawSuspect = true;
    t.is(m.awarenessScore, 0);
  }
  t.true(sawSuspect);
});

/** A node with peers b..e; returns helpers to drive it by hand. */
function smallCluster(seed: number) {
  const m = new Membership({ self: { id: 'a', address: 'addr-a' }, rng: mulberry32(seed), now: 0, claims: UNSIGNED_CLAIMS });
  for (const id of ['b', 'c', 'd', 'e']) m.addMember(0, { id, address: `addr-${id}`, incarnation: 0 });
  return m;
}

/** What a host's timers phase does after a stall: tick at `now` while anything is still due, before any I/O is read. */
function tickWhileDue(m: Membership, now: number): Effect[] {
  const out: Effect[] = [];
  for (let i = 0; i < 10; i++) {
    out.push(...m.tick(now));
    if (m.nextDeadline() > now) break;
  }
  return out;
}

test('a tick that comes late (our own stall) does not turn an ack that arrived meanwhile into a suspicion', (t) => {
  const m = smallCluster(11);
  let now = 0;
  let ping: { to: string; seq: number } | undefined;
  while (ping === undefined) {
    now = Math.max(now, m.nextDeadline());
    for (const e of m.tick(now)) if (e.kind === 'send' && e.message.kind === 'ping') ping = { to: e.to, seq: e.message.seq };
  }
  // The target answers within 1 ms, but our process is stalled until 700 ms
  // past the probe's start (past its direct and final deadlines), and the
  // timers run before the ack is read from the socket.
  const stalledUntil = now + PI + 200;
  tickWhileDue(m, stalledUntil);
  t.is(m.member(ping.to)?.state, 'alive', 'no verdict on the target while its ack is still unread');
  m.handle(stalledUntil + 1, ping.to, { kind: 'ack', seq: ping.seq, updates: [] });
  t.true(m.awarenessScore > 0, 'the stall counts against our own health');
  for (now = stalledUntil + 1; now < stalledUntil + 3_000; ) {
    now = Math.max(now + 1, m.nextDeadline());
    for (const e of m.tick(now)) {
      if (e.kind === 'send' && e.message.kind === 'ping') m.handle(now, e.to, { kind: 'ack', seq: e.message.seq, updates: [] });
    }
    t.is(m.member(ping.to)?.state, 'alive');
  }
});

test('a suspicion that runs out while we are stalled waits for the refutation that arrived meanwhile', (t) => {
  const accused = (seed: number): Membership => {
    const m = smallCluster(seed);
    m.handle(0, 'c', { kind: 'gossip', updates: [{ node: 'b', address: 'addr-b', incarnation: 0, state: 'suspect', from: 'c' }] });
    return m;
  };
  // Everyone but b answers; b is silent, so only the suspicion timer decides.
  const run = (m: Membership, from: number, until: number): number => {
    let now = from;
    while (Math.max(now, m.nextDeadline()) < until && m.member('b')?.state === 'suspect') {
      now = Math.max(now, m.nextDeadline());
      for (const e of m.tick(now)) {
        if (e.kind === 'send' && e.message.kind === 'ping' && e.to !== 'b') m.handle(now, e.to, { kind: 'ack', seq: e.message.seq, updates: [] });
      }
    }
    return now;
  };
  const onTime = accused(12);
  const expiredAt = run(onTime, 0, 60_000);
  t.is(onTime.member('b')?.state, 'dead', 'sanity: with timely ticks the suspicion expires');
  // Same node, same seed, but stalled from just before the expiry until 400 ms after it;
  // b's refutation arrives during the stall and is read after the timers.
  const late = accused(12);
  run(late, 0, expiredAt - 50);
  const stalledUntil = expiredAt + 400;
  tickWhileDue(late, stalledUntil);
  t.is(late.member('b')?.state, 'suspect', 'not declared dead on a late timer');
  late.handle(stalledUntil + 1, 'b', { kind: 'gossip', updates: [{ node: 'b', address: 'addr-b', incarnation: 1, state: 'alive', from: 'b' }] });
  t.is(late.member('b')?.state, 'alive', 'the refutation read after the stall wins');
});

test('ticks on time never raise the score; one long stall raises it once', (t) => {
  const m = smallCluster(13);
  let now = 0;
  const answer = (effects: Effect[]): void => {
    for (const e of effects) if (e.kind === 'send' && e.message.kind === 'ping') m.handle(now, e.to, { kind: 'ack', seq: e.message.seq, updates: [] });
  };
  while (now < 10_000) {
    now = Math.max(now, m.nextDeadline());
    answer(m.tick(now));
    t.is(m.awarenessScore, 0);
  }
  now = Math.max(now, m.nextDeadline()) + 2_000;
  const effects = tickWhileDue(m, now);
  t.is(m.awarenessScore, 1);
  answer(effects);
  t.true(m.awarenessScore <= 1);
});
