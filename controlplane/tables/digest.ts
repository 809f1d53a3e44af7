// Anti-entropy digests: one line per (table, owner) bucket with its entry
// count and the XOR of its entries' 64-bit fingerprints.
//
// Why buckets per owner: a node's entries change together (its endpoints on
// a network), gossip loss and partitions affect whole publishers, and the
// number of buckets grows with nodes x tables, not with entries. A round in
// which nothing differs costs one digest (one short line per bucket) and an empty
// reply, and the buckets' summaries are maintained on every write, so making
// a digest never rescans entries.

import type { ReplicatedTables } from './table.ts';
import { fingerprintHex } from './hash.ts';

export interface BucketDigest {
  table: string;
  owner: string;
  count: number;
  /** XOR of the entries' fingerprints, 16 hex digits. */
  hash: string;
}

export interface Digest {
  /**
   * The tables this digest speaks for, including tables where the sender
   * holds nothing: "I hold nothing in endpoints/n1" is information, and a
   * table missing here is outside the exchange (e.g. a network the sender
   * is not on).
   */
  tables: string[];
  buckets: BucketDigest[];
}

/**
 * Digest of the given tables. The scope is explicit because a node cannot
 * name tables it has never heard of: the agent passes the cluster tables and
 * the per-network tables of the networks it is on.
 */
export function makeDigest(store: ReplicatedTables, scope: Iterable<string>): Digest {
  const tables = [...new Set(scope)].sort();
  const buckets: BucketDigest[] = [];
  for (const table of tables) {
    for (const bucket of store.buckets(table)) {
      buckets.push({ table, owner: bucket.owner, count: bucket.count, hash: fingerprintHex(bucket.fingerprint) });
    }
  }
  return { tables, buckets };
}

export function bucketId(table: string, owner: string): string {
  return JSON.stringify([table, owner]);
}

/** Equal counts and hashes: the two buckets hold the same versions (up to a 2^-64 collision). */
export function sameBucket(a: BucketDigest | undefined, b: BucketDigest | undefined): boolean {
  return a !== undefined && b !== undefined && a.count === b.count && a.hash === b.hash;
}

export function localBucketDigest(store: ReplicatedTables, table: string, owner: string): BucketDigest | undefined {
  const bucket = store.bucket(table, owner);
  return bucket === undefined ? undefined : { table, owner, count: bucket.count, hash: fingerprintHex(bucket.fingerprint) };
}
