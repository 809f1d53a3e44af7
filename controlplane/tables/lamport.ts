// A Lamport clock orders writes across nodes without synchronised wall clocks.
// Every local write ticks it; every entry received from a peer is witnessed so
// that the next local write is ordered after everything this node has seen.
// One clock per node covers all its tables: a single counter is enough for a
// total order and keeps "which of my writes is newer" trivially answerable.

export class LamportClock {
  #time: number;

  /**
   * `initial` lets an agent restore a persisted time after a restart. A node
   * that restarts at 0 writes entries older than its own pre-restart ones,
   * which would lose to them everywhere until it had witnessed them in a sync.
   */
  constructor(initial = 0) {
    if (!Number.isSafeInteger(initial) || initial < 0) throw new RangeError(`lamport time must be a non-negative safe integer, got ${initial}`);
    this.#time = initial;
  }

  get time(): number {
    return this.#time;
  }

  /** Advances the clock for a local write and returns the write's time. */
  tick(): number {
    this.#time += 1;
    return this.#time;
  }

  /** Records a time seen on a received entry, so later local writes order after it. */
  witness(time: number): void {
    if (time > this.#time) this.#time = time;
  }
}

/**
 * A received entry may carry a Lamport time at most this far ahead of the
 * receiver's clock, taken before the batch (so a batch cannot ratchet itself
 * up). A correct node never is that far ahead: a new or restarted node's
 * clock trails, never leads, and 2^32 writes are centuries of a real
 * cluster. Without it one entry at 2^53-1 would be witnessed by every node,
 * and the next local write (2^53) would no longer fit the codec: replication
 * would stop cluster-wide.
 */
export const MAX_LAMPORT_JUMP = 2 ** 32;

/** Accepted times never pass this, so a local write after them is still a safe integer. */
export const MAX_LAMPORT = Number.MAX_SAFE_INTEGER - MAX_LAMPORT_JUMP;

/** Why a received Lamport time is refused, given our clock before its batch. */
export function implausibleLamport(lamport: number, clockBefore: number): string | undefined {
  if (lamport > MAX_LAMPORT) return `Lamport time ${lamport} is above the ceiling ${MAX_LAMPORT}`;
  if (lamport > clockBefore + MAX_LAMPORT_JUMP) return `Lamport time ${lamport} runs more than ${MAX_LAMPORT_JUMP} ahead of ours (${clockBefore})`;
  return undefined;
}
