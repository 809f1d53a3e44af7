// The simulator on its own, with a toy state machine: it must be a
// faithful, deterministic network for any SimNode, not just membership.
import test from 'ava';
import fc from 'fast-check';
import { EventQueue } from '../../controlplane/sim/event-queue.ts';
import type { Envelope, SimNode } from '../../controlplane/sim/simulator.ts';
import { Simulator } from '../../controlplane/sim/simulator.ts';

interface Beacon {
  sentAt: number;
}

/** Sends a beacon to every peer each `periodMs`, records what arrives. */
class BeaconNode implements SimNode<Beacon> {
  readonly id: string;
  readonly peers: string[];
  readonly received: { from: string; sentAt: number; at: number }[] = [];
  ticks = 0;
  #next = 0;
  readonly #periodMs: number;

  constructor(id: string, peers: string[], periodMs = 100) {
    this.id = id;
    this.peers = peers;
    this.#periodMs = periodMs;
  }

  handle(now: number, from: string, message: Beacon): Envelope<Beacon>[] {
    this.received.push({ from, sentAt: message.sentAt, at: now });
    return [];
  }

  tick(now: number): Envelope<Beacon>[] {
    if (now < this.#next) return [];
    this.ticks++;
    this.#next = now + this.#periodMs;
    return this.peers.map((to) => ({ to, message: { sentAt: now } }));
  }

  nextWakeAt(): number {
    return this.#next;
  }
}

function pair(options: { seed?: number; loss?: number } = {}) {
  const sim = new Simulator<Beacon, BeaconNode>({ seed: options.seed ?? 1, network: { latencyMs: 10, jitterMs: 5, loss: options.loss ?? 0 } });
  const a = new BeaconNode('a', ['b']);
  const b = new BeaconNode('b', ['a']);
  sim.add(a);
  sim.add(b);
  return { sim, a, b };
}

test('the event queue pops in (time, insertion) order', (t) => {
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 0, max: 50 }), { maxLength: 300 }), (times) => {
      const q = new EventQueue<{ at: number; seq: number }>();
      times.forEach((at, seq) => q.push({ at, seq }));
      const popped: { at: number; seq: number }[] = [];
      for (let e = q.pop(); e !== undefined; e = q.pop()) popped.push(e);
      const expected = times.map((at, seq) => ({ at, seq })).sort((x, y) => x.at - y.at || x.seq - y.seq);
      return JSON.stringify(popped) === JSON.stringify(expected);
    }),
  );
  t.pass();
});

test('nodes tick on their own schedule and messages take latency ± jitter', (t) => {
  const { sim, a, b } = pair();
  sim.runUntil(10_000);
  t.is(a.ticks, 101);
  t.is(b.received.length, 100, 'the beacon sent at 10 s is still in flight');
  for (const r of b.received) {
    t.true(r.at - r.sentAt >= 5 && r.at - r.sentAt <= 15);
  }
  t.is(sim.now, 10_000);
});

test('loss drops the configured fraction of messages', (t) => {
  const { sim, b } = pair({ loss: 0.3 });
  sim.runUntil(1_000_000);
  const fraction = b.received.length / 10_000;
  t.true(fraction > 0.67 && fraction < 0.73, `delivered ${fraction}`);
  t.true(sim.stats.dropped > 5000);
});

test('a partition blocks both directions until healed', (t) => {
  const { sim, a, b } = pair();
  sim.runUntil(1_000);
  sim.network.partition([['a']]);
  const before = [a.received.length, b.received.length];
  sim.runUntil(2_000);
  t.true(a.received.length - (before[0] ?? 0) <= 1, 'only what was already in flight');
  t.true(b.received.length - (before[1] ?? 0) <= 1);
  sim.network.heal();
  sim.runUntil(3_000);
  t.true(a.received.length - (before[0] ?? 0) >= 9);
});

test('a crashed node neither ticks nor receives; a restart brings a fresh instance', (t) => {
  const { sim, a, b } = pair();
  sim.runUntil(1_000);
  sim.crash('b');
  const ticks = b.ticks;
  sim.runUntil(2_000);
  t.is(b.ticks, ticks);
  t.true(sim.stats.undeliverable >= 9);
  const fresh = new BeaconNode('b', ['a']);
  sim.restart(fresh);
  sim.runUntil(3_000);
  t.true(fresh.ticks >= 10);
  t.true(fresh.received.length >= 9);
  t.is(sim.node('b'), fresh);
  t.true(a.received.filter((r) => r.at > 2_000).length >= 9);
});

test('scheduled actions and invoke() let scenarios act as the host', (t) => {
  const { sim, a, b } = pair();
  sim.at(500, () => sim.invoke('a', (_node, now) => [{ to: 'b', message: { sentAt: now + 0.5 } }]));
  sim.runUntil(600);
  t.truthy(b.received.find((r) => r.sentAt === 500.5));
  t.is(a.id, 'a');
});

test('a node that wants to tick again at the same instant is reported, not spun on', (t) => {
  const sim = new Simulator<Beacon>({ seed: 1 });
  sim.add({ id: 'x', handle: () => [], tick: () => [], nextWakeAt: () => 5 });
  t.throws(() => sim.runUntil(10), { message: /asks to tick again/ });
});

test('runs are a pure function of the seed', (t) => {
  const trace = (seed: number) => {
    const { sim, b } = pair({ seed, loss: 0.2 });
    sim.runUntil(5_000);
    return b.received.map((r) => r.at);
  };
  t.deepEqual(trace(3), trace(3));
  t.notDeepEqual(trace(3), trace(4));
});
