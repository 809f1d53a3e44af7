// Seeded randomness for the pure state machines. controlplane/ may not call
// Math.random: every random choice (probe order, intermediaries, gossip
// targets, start-up stagger) must replay exactly under the simulator from a
// seed. Production seeds the same generator from node:crypto in agent/.

export interface Rng {
  /** Uniform in [0, 1). */
  next(): number;
}

/**
 * mulberry32: 32 bits of state, passes SmallCrush, a few ns per draw. Not
 * cryptographic, and nothing here needs it to be: an attacker who can
 * predict our probe order gains nothing the transport's authentication
 * does not already deny them.
 */
export function mulberry32(seed: number): Rng {
  let state = seed >>> 0;
  return {
    next(): number {
      state = (state + 0x6d2b79f5) >>> 0;
      let t = state;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    },
  };
}

/**
 * Derives independent seeds from one (splitmix32 finaliser), so that each
 * simulated node and the simulated network get their own stream and adding
 * a node does not shift every other node's draws.
 */
export function deriveSeed(seed: number, stream: number): number {
  let z = (seed ^ Math.imul(stream + 1, 0x9e3779b9)) >>> 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

/** Uniform integer in [0, n). */
export function randomInt(rng: Rng, n: number): number {
  return Math.floor(rng.next() * n);
}

/** Fisher-Yates, in place; returns the same array for chaining. */
export function shuffle<T>(rng: Rng, items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = randomInt(rng, i + 1);
    const a = items[i] as T;
    items[i] = items[j] as T;
    items[j] = a;
  }
  return items;
}

/**
 * Up to k distinct elements of `pool` that satisfy `accept`, uniformly.
 * Tries cheap rejection sampling first because pools are large (every
 * member) and most members are usually acceptable; falls back to a full
 * filter when they are not (e.g. a partition left most members dead).
 */
export function sample(
  rng: Rng,
  pool: readonly string[],
  k: number,
  accept: (id: string) => boolean,
): string[] {
  if (k <= 0 || pool.length === 0) return [];
  const picked = new Set<string>();
  const attempts = 4 * k + 16;
  for (let i = 0; i < attempts && picked.size < k; i++) {
    const id = pool[randomInt(rng, pool.length)] as string;
    if (!picked.has(id) && accept(id)) picked.add(id);
  }
  if (picked.size === k) return [...picked];
  const eligible = shuffle(rng, pool.filter(accept));
  return eligible.slice(0, k);
}
