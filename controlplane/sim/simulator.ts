// Deterministic discrete-event simulator: N pure state machines in one
// process, virtual time, a simulated network. Anything that implements
// SimNode (membership today, table anti-entropy tomorrow) can be run on it.
// Same seed, same run: all randomness comes from seeded streams and events
// at equal times run in insertion order.

import type { Rng } from '../membership/rng.ts';
import { deriveSeed, mulberry32 } from '../membership/rng.ts';
import { EventQueue } from './event-queue.ts';
import type { NetworkConfig } from './network.ts';
import { SimNetwork } from './network.ts';

export interface Envelope<M> {
  to: string;
  message: M;
}

export interface SimNode<M> {
  readonly id: string;
  handle(now: number, from: string, message: M): readonly Envelope<M>[];
  tick(now: number): readonly Envelope<M>[];
  /** When tick() next has work; Infinity when idle. */
  nextWakeAt(): number;
}

export interface SimStats {
  sent: number;
  delivered: number;
  /** Lost by the network or partitioned away. */
  dropped: number;
  /** Arrived at a crashed node. */
  undeliverable: number;
  ticks: number;
}

type SimEvent<M> =
  | { at: number; seq: number; kind: 'deliver'; from: string; to: string; message: M }
  | { at: number; seq: number; kind: 'wake'; node: string; token: number }
  | { at: number; seq: number; kind: 'action'; run: () => void };

interface Slot<N> {
  node: N;
  up: boolean;
  wakeAt: number;
  wakeToken: number;
}

export interface SimulatorOptions {
  seed: number;
  network?: Partial<NetworkConfig>;
}

export class Simulator<M, N extends SimNode<M> = SimNode<M>> {
  readonly network: SimNetwork;
  readonly stats: SimStats = { sent: 0, delivered: 0, dropped: 0, undeliverable: 0, ticks: 0 };
  readonly #rng: Rng;
  readonly #queue = new EventQueue<SimEvent<M>>();
  readonly #slots = new Map<string, Slot<N>>();
  #now = 0;
  #seq = 0;

  constructor(options: SimulatorOptions) {
    this.network = new SimNetwork(options.network);
    // Stream 0xffffffff is the network's; nodes use their own indices.
    this.#rng = mulberry32(deriveSeed(options.seed, 0xffffffff));
  }

  get now(): number {
    return this.#now;
  }

  /** Network randomness, for scenario choices that must replay too. */
  get rng(): Rng {
    return this.#rng;
  }

  add(node: N): void {
    if (this.#slots.has(node.id)) throw new Error(`simulator: node ${node.id} already exists`);
    this.#slots.set(node.id, { node, up: true, wakeAt: Infinity, wakeToken: 0 });
    this.#reschedule(node.id);
  }

  node(id: string): N | undefined {
    return this.#slots.get(id)?.node;
  }

  nodes(): N[] {
    return [...this.#slots.values()].map((slot) => slot.node);
  }

  isUp(id: string): boolean {
    return this.#slots.get(id)?.up ?? false;
  }

  /** The node stops: no more ticks, messages to it vanish. Its state is kept for inspection. */
  crash(id: string): void {
    const slot = this.#slot(id);
    slot.up = false;
    slot.wakeAt = Infinity;
    slot.wakeToken++;
  }

  /** Replaces a crashed node's instance with a fresh one (state lost, as in a process restart). */
  restart(node: N): void {
    const slot = this.#slot(node.id);
    slot.node = node;
    slot.up = true;
    this.#reschedule(node.id);
  }

  /** Runs `run` at virtual time `at` (clamped to now). */
  at(at: number, run: () => void): void {
    this.#push({ at: Math.max(at, this.#now), seq: 0, kind: 'action', run });
  }

  /**
   * Lets scenario code act on a node as its host would (push-pull, join,
   * leave): the returned messages are sent and its timers rescheduled.
   */
  invoke(id: string, act: (node: N, now: number) => readonly Envelope<M>[]): void {
    const slot = this.#slot(id);
    if (!slot.up) return;
    this.#sendAll(id, act(slot.node, this.#now));
    this.#reschedule(id);
  }

  /** Processes every event up to and including `until`; now = until afterwards. */
  runUntil(until: number): void {
    for (;;) {
      const next = this.#queue.peek();
      if (next === undefined || next.at > until) break;
      this.#queue.pop();
      this.#now = next.at;
      this.#dispatch(next);
    }
    this.#now = Math.max(this.#now, until);
  }

  runFor(ms: number): void {
    this.runUntil(this.#now + ms);
  }

  /** Runs until `done()` holds (checked after each event) or `until`; true if it held. */
  runUntilTrue(until: number, done: () => boolean): boolean {
    if (done()) return true;
    for (;;) {
      const next = this.#queue.peek();
      if (next === undefined || next.at > until) break;
      this.#queue.pop();
      this.#now = next.at;
      this.#dispatch(next);
      if (done()) return true;
    }
    this.#now = Math.max(this.#now, until);
    return false;
  }

  #dispatch(event: SimEvent<M>): void {
    switch (event.kind) {
      case 'action':
        event.run();
        return;
      case 'deliver':
        this.#deliver(event.from, event.to, event.message);
        return;
      case 'wake':
        this.#wake(event.node, event.token);
        return;
    }
  }

  #deliver(from: string, to: string, message: M): void {
    const slot = this.#slots.get(to);
    if (slot === undefined || !slot.up) {
      this.stats.undeliverable++;
      return;
    }
    this.stats.delivered++;
    this.#sendAll(to, slot.node.handle(this.#now, from, message));
    this.#reschedule(to);
  }

  #wake(id: string, token: number): void {
    const slot = this.#slots.get(id);
    if (slot === undefined || !slot.up || slot.wakeToken !== token) return;
    slot.wakeAt = Infinity;
    this.stats.ticks++;
    this.#sendAll(id, slot.node.tick(this.#now));
    this.#reschedule(id, true);
  }

  #sendAll(from: string, envelopes: readonly Envelope<M>[]): void {
    for (const { to, message } of envelopes) {
      this.stats.sent++;
      const delay = this.network.transit(this.#rng, from, to);
      if (delay === null) {
        this.stats.dropped++;
        continue;
      }
      this.#push({ at: this.#now + delay, seq: 0, kind: 'deliver', from, to, message });
    }
  }

  /**
   * Schedules the node's next tick if it moved earlier. A wake that turns
   * out early just ticks for nothing, so later wakes need no cancelling.
   */
  #reschedule(id: string, afterTick = false): void {
    const slot = this.#slots.get(id);
    if (slot === undefined || !slot.up) return;
    const at = Math.max(slot.node.nextWakeAt(), this.#now);
    if (!Number.isFinite(at) || at >= slot.wakeAt) return;
    // A node that still wants a tick right after ticking would spin forever
    // at one instant; that is a bug in the node, so fail loudly.
    if (afterTick && at <= this.#now) throw new Error(`simulator: ${id} asks to tick again at ${this.#now}`);
    slot.wakeAt = at;
    slot.wakeToken++;
    this.#push({ at, seq: 0, kind: 'wake', node: id, token: slot.wakeToken });
  }

  #push(event: SimEvent<M>): void {
    event.seq = this.#seq++;
    this.#queue.push(event);
  }

  #slot(id: string): Slot<N> {
    const slot = this.#slots.get(id);
    if (slot === undefined) throw new Error(`simulator: no node ${id}`);
    return slot;
  }
}
