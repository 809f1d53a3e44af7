// Per-(table, owner) buckets: the unit that anti-entropy compares. Each
// bucket keeps its entry count and the XOR of its entries' fingerprints up
// to date on every write, so producing a digest never rescans the entries.

import { EMPTY_FINGERPRINT, xorFingerprints } from './hash.ts';
import type { Fingerprint } from './hash.ts';

export interface Bucket {
  owner: string;
  count: number;
  fingerprint: Fingerprint;
  keys: Set<string>;
}

export class BucketIndex {
  readonly #tables = new Map<string, Map<string, Bucket>>();

  add(table: string, owner: string, key: string, fp: Fingerprint): void {
    let owners = this.#tables.get(table);
    if (owners === undefined) {
      owners = new Map();
      this.#tables.set(table, owners);
    }
    let bucket = owners.get(owner);
    if (bucket === undefined) {
      bucket = { owner, count: 0, fingerprint: EMPTY_FINGERPRINT, keys: new Set() };
      owners.set(owner, bucket);
    }
    bucket.keys.add(key);
    bucket.count += 1;
    bucket.fingerprint = xorFingerprints(bucket.fingerprint, fp);
  }

  remove(table: string, owner: string, key: string, fp: Fingerprint): void {
    const owners = this.#tables.get(table);
    const bucket = owners?.get(owner);
    if (owners === undefined || bucket === undefined || !bucket.keys.delete(key)) return;
    bucket.count -= 1;
    bucket.fingerprint = xorFingerprints(bucket.fingerprint, fp);
    // Empty buckets and tables vanish so digests only list what exists.
    if (bucket.count === 0) owners.delete(owner);
    if (owners.size === 0) this.#tables.delete(table);
  }

  get(table: string, owner: string): Bucket | undefined {
    return this.#tables.get(table)?.get(owner);
  }

  buckets(table: string): Iterable<Bucket> {
    return this.#tables.get(table)?.values() ?? [];
  }

  tables(): Iterable<string> {
    return this.#tables.keys();
  }
}
