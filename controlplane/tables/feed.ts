// Synchronous fan-out of visible changes to consumers that prefer callbacks
// over inspecting return values. No queues and no timers: a listener runs
// inside the mutation call that produced the change, after the state is
// updated, so what it reads from the tables is already consistent.

import type { Change } from './change.ts';

export type ChangeListener = (changes: readonly Change[]) => void;
export type TableFilter = (table: string) => boolean;

interface Subscription {
  listener: ChangeListener;
  filter: TableFilter | undefined;
}

export class ChangeFeed {
  readonly #subscriptions = new Set<Subscription>();

  /** Returns the function that ends the subscription. */
  subscribe(listener: ChangeListener, filter?: TableFilter): () => void {
    const subscription: Subscription = { listener, filter };
    this.#subscriptions.add(subscription);
    return () => {
      this.#subscriptions.delete(subscription);
    };
  }

  /** Delivers one batch; a listener only hears about tables its filter accepts. */
  publish(changes: readonly Change[]): void {
    if (changes.length === 0) return;
    for (const { listener, filter } of [...this.#subscriptions]) {
      const mine = filter === undefined ? changes : changes.filter((c) => filter(c.table));
      if (mine.length > 0) listener(mine);
    }
  }
}

/** Filter for a family of per-network tables, e.g. tablePrefix('endpoints/'). */
export function tablePrefix(prefix: string): TableFilter {
  return (table) => table.startsWith(prefix);
}
