// Token buckets, one per key (a source address), with a bounded number of
// keys. Pure: the caller passes the time, so this holds no timers and is
// tested without waiting.

export interface BucketRule {
  /** Requests allowed in a burst. */
  burst: number;
  /** Tokens added back per second. */
  perSecond: number;
}

interface Bucket {
  tokens: number;
  at: number; // ms of the last refill
}

export class KeyedRateLimiter {
  readonly #rule: BucketRule;
  readonly #maxKeys: number;
  readonly #buckets = new Map<string, Bucket>();

  constructor(rule: BucketRule, maxKeys = 4096) {
    if (!(rule.burst >= 1) || !(rule.perSecond > 0)) throw new Error('a rate limit needs burst >= 1 and perSecond > 0');
    this.#rule = rule;
    this.#maxKeys = maxKeys;
  }

  /** Takes one token for key at time nowMs; false when its bucket is empty. */
  take(key: string, nowMs: number): boolean {
    const bucket = this.#refilled(key, nowMs);
    if (bucket.tokens < 1) return false;
    bucket.tokens -= 1;
    return true;
  }

  #refilled(key: string, nowMs: number): Bucket {
    let bucket = this.#buckets.get(key);
    if (bucket === undefined) {
      // Forgetting the oldest key only ever hands someone a fresh (full) bucket:
      // an attacker with many addresses cannot make a victim's limit stricter.
      if (this.#buckets.size >= this.#maxKeys) this.#buckets.delete(this.#buckets.keys().next().value!);
      bucket = { tokens: this.#rule.burst, at: nowMs };
      this.#buckets.set(key, bucket);
      return bucket;
    }
    const elapsed = Math.max(0, nowMs - bucket.at) / 1000;
    bucket.tokens = Math.min(this.#rule.burst, bucket.tokens + elapsed * this.#rule.perSecond);
    bucket.at = nowMs;
    return bucket;
  }

  get size(): number {
    return this.#buckets.size;
  }
}

/** Counts concurrent holders per key (open connections per address) under a per-key and a total cap. */
export class ConcurrencyLimiter {
  readonly #perKey: number;
  readonly #total: number;
  readonly #held = new Map<string, number>();
  #count = 0;

  constructor(perKey: number, total: number) {
    this.#perKey = perKey;
    this.#total = total;
  }

  /** 'ok' (and counts it), or why not. */
  acquire(key: string): 'ok' | 'per-address' | 'total' {
    const mine = this.#held.get(key) ?? 0;
    if (mine >= this.#perKey) return 'per-address';
    if (this.#count >= this.#total) return 'total';
    this.#held.set(key, mine + 1);
    this.#count += 1;
    return 'ok';
  }

  release(key: string): void {
    const mine = this.#held.get(key) ?? 0;
    if (mine === 0) return;
    if (mine === 1) this.#held.delete(key);
    else this.#held.set(key, mine - 1);
    this.#count -= 1;
  }

  get count(): number {
    return this.#count;
  }
}
