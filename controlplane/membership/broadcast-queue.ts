// Infection-style dissemination: membership updates waiting to be
// piggybacked on outgoing messages. Each update is sent a bounded number of
// times (enough for an epidemic to cover the cluster w.h.p.), the least-sent
// updates go first so fresh news is never starved by old news, and a newer
// update about a node replaces the queued one: spreading stale facts would
// only make receivers discard them.

import type { MemberUpdate } from './messages.ts';

/** retransmitMult * ceil(log10(N + 1)): O(log N) rounds reach everyone. */
export function retransmitLimit(retransmitMult: number, clusterSize: number): number {
  return retransmitMult * Math.ceil(Math.log10(clusterSize + 1));
}

/**
 * Protobuf size estimate of one update inside a message: field bytes plus
 * tag/length/varint overhead. Used only to respect the per-message budget.
 */
export function estimateUpdateBytes(update: MemberUpdate): number {
  return update.node.length + update.address.length + update.from.length + update.state.length + 16 + (update.signature === undefined ? 0 : update.signature.length + 2);
}

interface Queued {
  update: MemberUpdate;
  transmits: number;
}

export class BroadcastQueue {
  // buckets[t]: updates sent t times, in insertion order (oldest first).
  readonly #buckets: Map<string, Queued>[] = [];
  readonly #byNode = new Map<string, Queued>();

  get size(): number {
    return this.#byNode.size;
  }

  enqueue(update: MemberUpdate): void {
    this.#remove(update.node);
    const item: Queued = { update, transmits: 0 };
    this.#byNode.set(update.node, item);
    this.#bucket(0).set(update.node, item);
  }

  /** Pending update about `node`, if any (for tests and introspection). */
  pending(node: string): MemberUpdate | undefined {
    return this.#byNode.get(node)?.update;
  }

  /**
   * Updates for one outgoing message, within `budgetBytes`; each counts as
   * one transmission and is dropped after `limit` of them.
   */
  take(budgetBytes: number, limit: number): MemberUpdate[] {
    if (this.#byNode.size === 0) return [];
    const chosen: Queued[] = [];
    let room = budgetBytes;
    for (let t = 0; t < this.#buckets.length && room > 0; t++) {
      for (const item of this.#buckets[t]?.values() ?? []) {
        // Below the fixed overhead nothing else can fit: stop scanning.
        if (room < 16) break;
        const bytes = estimateUpdateBytes(item.update);
        if (bytes > room) continue;
        room -= bytes;
        chosen.push(item);
      }
    }
    for (const item of chosen) this.#advance(item, limit);
    return chosen.map((item) => item.update);
  }

  #advance(item: Queued, limit: number): void {
    const node = item.update.node;
    this.#buckets[item.transmits]?.delete(node);
    item.transmits++;
    if (item.transmits >= limit) {
      this.#byNode.delete(node);
      return;
    }
    this.#bucket(item.transmits).set(node, item);
  }

  #remove(node: string): void {
    const old = this.#byNode.get(node);
    if (old === undefined) return;
    this.#buckets[old.transmits]?.delete(node);
    this.#byNode.delete(node);
  }

  #bucket(transmits: number): Map<string, Queued> {
    let bucket = this.#buckets[transmits];
    while (bucket === undefined) {
      this.#buckets.push(new Map());
      bucket = this.#buckets[transmits];
    }
    return bucket;
  }
}
