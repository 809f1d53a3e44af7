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
