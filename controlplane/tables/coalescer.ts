// Outgoing entries wait here until the agent flushes them as one gossip
// message. Signing a gossipsub message costs ~0.5 ms, so one message per
// entry caps a node at ~2,000 entries/s while one message per few ms carries
// any number. Only the newest version of a key is worth sending: a version
// that was superseded before the flush would be discarded by every receiver.

import { compareVersions } from './entry.ts';
import type { WireEntry } from './entry.ts';

export class Coalescer {
  readonly #pending = new Map<string, WireEntry>();
  #firstPendingAt: number | undefined;

  /** `now` records when the batch started filling, for flush-by-age policies. */
  add(now: number, entry: WireEntry): void {
    const id = entryId(entry);
    const queued = this.#pending.get(id);
    if (queued !== undefined && compareVersions(entry, queued) <= 0) return;
    // Map.set on an existing key keeps its position: a key keeps its place in line.
    this.#pending.set(id, entry);
    this.#firstPendingAt ??= now;
  }

  addAll(now: number, entries: Iterable<WireEntry>): void {
    for (const entry of entries) this.add(now, entry);
  }

  get size(): number {
    return this.#pending.size;
  }

  /** When the oldest pending entry was added; undefined when empty. */
  get firstPendingAt(): number | undefined {
    return this.#firstPendingAt;
  }

  /** True when something has waited at least `delayMs`. */
  due(now: number, delayMs: number): boolean {
    return this.#firstPendingAt !== undefined && now - this.#firstPendingAt >= delayMs;
  }

  /**
   * Removes and returns up to `max` entries in the order they were first
   * queued (a message size cap). What is left stays pending and keeps its
   * original age, so it is due again at once.
   */
  take(max = Number.POSITIVE_INFINITY): WireEntry[] {
    const batch: WireEntry[] = [];
    for (const [id, entry] of this.#pending) {
      if (batch.length >= max) break;
      batch.push(entry);
      this.#pending.delete(id);
    }
    if (this.#pending.size === 0) this.#firstPendingAt = undefined;
    return batch;
  }
}

function entryId(entry: WireEntry): string {
  // JSON keeps (table, key) pairs distinct whatever characters they contain.
  return JSON.stringify([entry.table, entry.key]);
}
