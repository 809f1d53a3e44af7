// The connections of a simulated cluster over time, as the agent's dialer
// (agent/cluster/member-dialer.ts) keeps them: every node dials each active
// member it holds no connection to, once a second, so after a connection
// closes BOTH ends dial it again until one of them gets through.
//   - The first dial to land opens the connection; the dialling side opens
//     the on-connect sync, as the agent's dialling side does. The other end's
//     next attempt finds the connection open and does nothing (member-dialer.ts
//     skips members it is connected to; libp2p would reuse the connection).
//     Two dials crossing in flight would open two connections in the agent,
//     both kept (stale-connections.ts supersedes only one 5 s older); the
//     model opens connections instantly, so that case does not arise here.
//   - A connection opens only between two active members: the dialer dials
//     only those (member-dialer.ts), the listener's connection gater admits
//     only those (libp2p-node.ts isAdmitted).
//   - Timers: each end's first attempt at a random point of the period (the
//     dialer's one-second interval runs at a phase unrelated to the close),
//     then one per period until the connection opens or the end goes down.
// Which connections exist at all is the ConnectionGraph's business
// (tables-connections.ts).
import type { Rng } from '../membership/rng.ts';
import { randomInt } from '../membership/rng.ts';
import type { Simulator } from './simulator.ts';
import type { ConnectionGraph, ConnectionParams, Edge } from './tables-connections.ts';
import type { TablesWire } from './tables-messages.ts';
import type { TablesSimNode } from './tables-node.ts';

export class SimDialer {
  readonly #sim: Simulator<TablesWire, TablesSimNode>;
  readonly #graph: ConnectionGraph;
  readonly #params: ConnectionParams;
  readonly #rng: Rng;

  constructor(sim: Simulator<TablesWire, TablesSimNode>, graph: ConnectionGraph, params: ConnectionParams, rng: Rng) {
    this.#sim = sim;
    this.#graph = graph;
    this.#params = params;
    this.#rng = rng;
  }

  /** `dialer` dials the other end of `edge` now; nothing happens when it is open or cannot open. */
  open(edge: Edge, dialer: string): void {
    const sim = this.#sim;
    const listener = other(edge, dialer);
    if (edge.up || !sim.isUp(dialer) || !sim.isUp(listener) || !sim.network.canReach(dialer, listener)) return;
    if (!this.#admits(dialer, listener) || !this.#admits(listener, dialer)) return;
    edge.up = true;
    edge.generation += 1;
    const dialerTopics = sim.node(dialer)?.router.topics() ?? [];
    const listenerTopics = sim.node(listener)?.router.topics() ?? [];
    sim.invoke(listener, (node, now) => node.connect(now, dialer, dialerTopics, false));
    sim.invoke(dialer, (node, now) => node.connect(now, listener, listenerTopics, true));
  }

  /** Closes a connection at both ends; both then dial it again (redial). */
  close(edge: Edge): void {
    if (!edge.up) return;
    edge.up = false;
    edge.generation += 1;
    // invoke() skips a crashed end: it has no state to update.
    this.#sim.invoke(edge.dialer, (node, now) => node.disconnect(now, edge.listener));
    this.#sim.invoke(edge.listener, (node, now) => node.disconnect(now, edge.dialer));
    this.redial(edge, edge.dialer);
    this.redial(edge, edge.listener);
  }

  /** `end`'s dialer timer for a closed `edge`: attempts every redialWithinMs until it opens. */
  redial(edge: Edge, end: string, delay = 1 + randomInt(this.#rng, this.#params.redialWithinMs)): void {
    const generation = edge.generation;
    this.#sim.at(this.#sim.now + delay, () => {
      if (edge.up || edge.generation !== generation || !this.#sim.isUp(end) || !this.#admits(end, other(edge, end))) return;
      this.open(edge, end);
      if (!edge.up) this.redial(edge, end, this.#params.redialWithinMs);
    });
  }

  /**
   * `observer` aborts its connection to `peer` (declared dead, or no longer
   * an active member). Queued, not done at once: the observer is in the
   * middle of a step, and closing calls into it.
   */
  hangUp(observer: string, peer: string): void {
    const edge = this.#graph.edgesOf(observer).find((e) => e.dialer === peer || e.listener === peer);
    if (edge !== undefined) this.#sim.at(this.#sim.now, () => this.close(edge));
  }

  /** Closes `edge` after dropAfterMs (a stalled TCP connection giving up) if it is still broken then. */
  closeLater(edge: Edge, stillBroken: () => boolean): void {
    if (!edge.up) return;
    const generation = edge.generation;
    this.#sim.at(this.#sim.now + this.#params.dropAfterMs, () => {
      if (edge.generation === generation && stillBroken()) this.close(edge);
    });
  }

  /** Does `node`'s roster hold `peer` as an active member (may they connect)? A crashed node admits no one. */
  #admits(node: string, peer: string): boolean {
    return this.#sim.node(node)?.members.isActive(peer) ?? false;
  }
}

function other(edge: Edge, end: string): string {
  return end === edge.dialer ? edge.listener : edge.dialer;
}
