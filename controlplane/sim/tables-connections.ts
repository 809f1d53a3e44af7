// The libp2p connection graph of a simulated cluster. Gossipsub and the
// periodic sync only use open connections, so who is connected to whom
// shapes dissemination.
//
// Assumption (docs/simulation.md): each node dials `dial` distinct random
// peers (15 by default) and accepts whoever dials it, so the graph is random
// with a mean degree of about 2 x dial (30) and a minimum of dial; below
// N = 2 x dial + 1 it is nearly a full mesh. The agent today dials every
// member (a full mesh), which is fine at N = 10-100 but not at N = 1000.
// SWIM does not use this graph: its packets go to any member (the agent
// dials on demand).
//
// Connection failures: a connection across a partition, or to a crashed
// node, closes when failure detection declares the other end dead (the
// agent drops a dead member's connections), at the latest after
// `dropAfterMs` (an assumption for a stalled TCP connection giving up: the
// agent turns libp2p's connection monitor off). A closed connection is
// re-dialled every `redialWithinMs` (the agent's dialer runs every second;
// first attempt at a random phase) from both ends, as the agent's dialer
// does, until one of them gets through (tables-dialer.ts). A restarted node
// re-dials all its connections at once, and keeps dialling those that do not open.

import type { Rng } from '../membership/rng.ts';
import { randomInt } from '../membership/rng.ts';

export interface ConnectionParams {
  dial: number;
  dropAfterMs: number;
  redialWithinMs: number;
}

export const DEFAULT_CONNECTIONS: Readonly<ConnectionParams> = Object.freeze({ dial: 15, dropAfterMs: 15_000, redialWithinMs: 1_000 });

export interface Edge {
  /** The side that dialled it first (bootstrap); after a close, either end may dial it again. */
  dialer: string;
  listener: string;
  up: boolean;
  /** Bumped on every open and close, so a stale scheduled close is ignored. */
  generation: number;
}

export class ConnectionGraph {
  readonly #edges: Edge[] = [];
  readonly #byNode = new Map<string, Edge[]>();

  constructor(ids: readonly string[], dial: number, rng: Rng) {
    const keys = new Set<string>();
    const n = ids.length;
    const k = Math.min(dial, n - 1);
    const others = ids.map((_, i) => i);
    for (let i = 0; i < n; i++) {
      // Partial Fisher-Yates over everyone but i: k distinct random peers.
      const pool = others.filter((j) => j !== i);
      for (let m = 0; m < k; m++) {
        const pick = m + randomInt(rng, pool.length - m);
        const j = pool[pick] as number;
        pool[pick] = pool[m] as number;
        pool[m] = j;
        const key = i < j ? `${i}:${j}` : `${j}:${i}`;
        if (keys.has(key)) continue;
        keys.add(key);
        this.#add({ dialer: ids[i] as string, listener: ids[j] as string, up: false, generation: 0 });
      }
    }
  }

  edges(): readonly Edge[] {
    return this.#edges;
  }

  edgesOf(id: string): readonly Edge[] {
    return this.#byNode.get(id) ?? [];
  }

  neighbours(id: string): string[] {
    return this.edgesOf(id).map((e) => (e.dialer === id ? e.listener : e.dialer));
  }

  meanDegree(): number {
    return this.#byNode.size === 0 ? 0 : (2 * this.#edges.length) / this.#byNode.size;
  }

  #add(edge: Edge): void {
    this.#edges.push(edge);
    for (const end of [edge.dialer, edge.listener]) {
      let list = this.#byNode.get(end);
      if (list === undefined) this.#byNode.set(end, (list = []));
      list.push(edge);
    }
  }
}
