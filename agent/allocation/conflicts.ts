// Ring merges the allocator refused (two nodes wrote the same token, this
// node's range was reclaimed while it was alive, a peer split our range...).
// They are never applied: applying one could hand a value out twice. They are
// kept here, deduplicated, for logs and `weft doctor`.
export interface AllocationConflict {
  space: string;
  /** Where the refused ring came from: a node ID, or `self` for a restore problem. */
  source: string;
  /** How it arrived: table (gossip/sync), reply, handover, restore, or a reclaimer's ring sync. */
  via: 'table' | 'reply' | 'handover' | 'restore' | 'sync';
  explanations: string[];
  firstSeen: Date;
  lastSeen: Date;
  count: number;
}

const MAX_CONFLICTS = 200;

export class ConflictLog {
  readonly #byKey = new Map<string, AllocationConflict>();

  /** Returns true when this conflict is new (worth an error log line). */
  record(space: string, source: string, via: AllocationConflict['via'], explanations: string[], now: Date): boolean {
    const key = JSON.stringify([space, source, via, explanations]);
    const known = this.#byKey.get(key);
    if (known) {
      known.lastSeen = now;
      known.count += 1;
      return false;
    }
    this.#byKey.set(key, { space, source, via, explanations: [...explanations], firstSeen: now, lastSeen: now, count: 1 });
    if (this.#byKey.size > MAX_CONFLICTS) this.#byKey.delete(this.#byKey.keys().next().value as string);
    return true;
  }

  /** Forgets a space's conflicts (its network is gone). */
  forget(space: string): void {
    for (const [key, conflict] of this.#byKey) if (conflict.space === space) this.#byKey.delete(key);
  }

  list(): AllocationConflict[] {
    return [...this.#byKey.values()].map((c) => ({ ...c, explanations: [...c.explanations] }));
  }
}
