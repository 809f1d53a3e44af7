// Every stored version of one node's tables (visible, hidden and
// tombstones), indexed the three ways the tables read them: by (table, key)
// for merges and reads, by (table, owner) bucket for anti-entropy digests
// and for hiding or forgetting a node's entries, and the set of tombstones
// for reaping. Knows nothing of visibility: ReplicatedTables decides what
// consumers see.

import { BucketIndex } from './bucket.ts';
import type { Bucket } from './bucket.ts';
import { compareVersions } from './entry.ts';
import type { Entry } from './entry.ts';
import { fingerprint } from './hash.ts';
import type { Fingerprint } from './hash.ts';

interface Stored {
  entry: Entry;
  fp: Fingerprint;
}

/** 'applied' carries the version it replaced (undefined for a new key). */
export type StoreOutcome = { status: 'applied'; replaced: Entry | undefined } | { status: 'stale' };

export class EntryStore {
  readonly #tables = new Map<string, Map<string, Stored>>();
  readonly #buckets = new BucketIndex();
  readonly #tombstones = new Set<Stored>();

  /** Keeps `entry` if it is greater than the stored version of its key (last writer wins). */
  merge(entry: Entry): StoreOutcome {
    let rows = this.#tables.get(entry.table);
    const current = rows?.get(entry.key);
    if (current !== undefined) {
      const order = compareVersions(entry, current.entry);
      if (order < 0) return { status: 'stale' };
      if (order === 0) return sameVersionAgain(current, entry);
    }
    if (rows === undefined) {
      rows = new Map();
      this.#tables.set(entry.table, rows);
    }
    if (current !== undefined) this.#unindex(current);
    const stored: Stored = { entry, fp: fingerprint(entry) };
    rows.set(entry.key, stored);
    this.#index(stored);
    return { status: 'applied', replaced: current?.entry };
  }

  /** The stored version of a key, including tombstones and hidden entries. */
  lookup(table: string, key: string): Entry | undefined {
    return this.#tables.get(table)?.get(key)?.entry;
  }

  /** Every stored entry of a table. */
  entries(table: string): Entry[] {
    return [...(this.#tables.get(table)?.values() ?? [])].map((s) => s.entry);
  }

  /** Names of tables holding at least one stored entry. */
  tableNames(): string[] {
    return [...this.#tables.keys()];
  }

  /** Every stored entry `node` owns, in any table. */
  ownedBy(node: string): Entry[] {
    const owned: Entry[] = [];
    for (const table of [...this.#buckets.tables()]) owned.push(...this.bucketEntries(table, node));
    return owned;
  }

  /** Drops the stored version of a key. */
  drop(table: string, key: string): void {
    const rows = this.#tables.get(table);
    const stored = rows?.get(key);
    if (stored === undefined) return;
    this.#unindex(stored);
    rows?.delete(key);
    if (rows?.size === 0) this.#tables.delete(table);
  }

  /** Removes tombstones whose reap deadline has passed; returns how many. */
  reap(now: number): number {
    let reaped = 0;
    for (const stored of [...this.#tombstones]) {
      if ((stored.entry.reapAt ?? now) > now) continue;
      this.drop(stored.entry.table, stored.entry.key);
      reaped += 1;
    }
    return reaped;
  }

  buckets(table: string): Iterable<Readonly<Bucket>> {
    return this.#buckets.buckets(table);
  }

  bucket(table: string, owner: string): Readonly<Bucket> | undefined {
    return this.#buckets.get(table, owner);
  }

  bucketEntries(table: string, owner: string): Entry[] {
    const bucket = this.#buckets.get(table, owner);
    if (bucket === undefined) return [];
    const rows = this.#tables.get(table);
    return [...bucket.keys].map((key) => rows?.get(key)?.entry).filter((e): e is Entry => e !== undefined);
  }

  #index(stored: Stored): void {
    this.#buckets.add(stored.entry.table, stored.entry.owner, stored.entry.key, stored.fp);
    if (stored.entry.deleted) this.#tombstones.add(stored);
  }

  #unindex(stored: Stored): void {
    this.#buckets.remove(stored.entry.table, stored.entry.owner, stored.entry.key, stored.fp);
    this.#tombstones.delete(stored);
  }
}

/**
 * The same tombstone can arrive with different residual reap times; keeping
 * the earliest deadline makes the result independent of arrival order.
 */
function sameVersionAgain(current: Stored, entry: Entry): StoreOutcome {
  if (entry.reapAt !== undefined && (current.entry.reapAt === undefined || entry.reapAt < current.entry.reapAt)) {
    current.entry = { ...current.entry, reapAt: entry.reapAt };
  }
  return { status: 'stale' };
}
