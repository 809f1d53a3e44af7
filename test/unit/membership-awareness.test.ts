import test from 'ava';
import { Awareness } from '../../controlplane/membership/awareness.ts';
import { DEFAULT_MEMBERSHIP_CONFIG, resolveConfig } from '../../controlplane/membership/config.ts';
import type { Effect } from '../../controlplane/membership/effects.ts';
import { Membership } from '../../controlplane/membership/membership.ts';
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
  const m = new Membership({ self: { id: 'a', address: 'addr-a' }, rng: mulberry32(3), now: 0 });
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
  const m = new Membership({ self: { id: 'a', address: 'addr-a' }, rng: mulberry32(5), now: 0 });
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
