// Consumers read table entries that peers wrote: each value must be decoded
// and checked against where it sits (its key, its owner, its table) before
// anything is built from it. One that fails is left out whole, never half
// used, and said why, so that `weft doctor` or a log line can name it.

import type { Entry } from './entry.ts';

export interface Decoded<T> {
  entry: Entry;
  value: T;
}

export interface Undecodable {
  entry: Entry;
  problem: string;
}

/** Decodes every entry with `decode`, which throws (with the problem) for an entry to leave out. */
export function decodeEntries<T>(entries: Iterable<Entry>, decode: (entry: Entry) => T): { decoded: Decoded<T>[]; undecodable: Undecodable[] } {
  const decoded: Decoded<T>[] = [];
  const undecodable: Undecodable[] = [];
  for (const entry of entries) {
    try {
      decoded.push({ entry, value: decode(entry) });
    } catch (error) {
      undecodable.push({ entry, problem: (error as Error).message });
    }
  }
  return { decoded, undecodable };
}
