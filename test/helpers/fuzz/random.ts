// Seeded randomness for the fuzzers: every input is reproducible from
// (target, seed, index), so a failure found in a long run can be replayed.
import { deriveSeed, mulberry32 } from '../../../controlplane/membership/rng.ts';

export class Random {
  readonly #rng;

  constructor(seed: number) {
    this.#rng = mulberry32(seed);
  }

  /** A generator for input `index` of a run seeded with `seed`. */
  static forInput(seed: number, index: number): Random {
    return new Random(deriveSeed(seed, index));
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.#rng.next() * n);
  }

  chance(p: number): boolean {
    return this.#rng.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)] as T;
  }

  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.int(256);
    return out;
  }

  /** Small sizes most of the time, sometimes large ones: where length limits bite. */
  size(max: number): number {
    const r = this.int(10);
    if (r < 6) return this.int(Math.min(max, 16) + 1);
    if (r < 9) return this.int(Math.min(max, 512) + 1);
    return this.int(max + 1);
  }
}
