// What the reconciler last left in each network's kernel tables: the entries
// it read, with the batch it applied on top, as the kernel model
// (entry-model.ts) says they became. A change-driven reconcile diffs against
// this instead of reading the kernel again, which takes the read (two process
// spawns, the slowest part of a run on a busy host) off the path from a table
// change to its kernel entries. It is only ever a shortcut: a network is
// forgotten before each of its runs and remembered again only when every
// batch succeeded, whenever it is created or removed, and periodic runs read
// the kernel, so drift made by hand is repaired as before (docs/dataplane.md,
// "Known entries").
import type { FdbEntry, NeighbourEntry } from './diff.ts';

export interface KnownNetworkEntries {
  readonly fdb: readonly FdbEntry[];
  readonly neighbours: readonly NeighbourEntry[];
}

export class KnownEntries {
  readonly #byNetns = new Map<string, KnownNetworkEntries>();

  get(netns: string): KnownNetworkEntries | undefined {
    return this.#byNetns.get(netns);
  }

  remember(netns: string, entries: KnownNetworkEntries): void {
    this.#byNetns.set(netns, entries);
  }

  forget(netns: string): void {
    this.#byNetns.delete(netns);
  }
}
