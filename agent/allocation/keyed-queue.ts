// Runs operations one at a time per key (per space): two local allocations
// must not interleave their steps on one allocator. Requests from peers are
// not queued here: each is one synchronous allocator step, and queueing them
// behind a local operation that is itself waiting on a peer would deadlock
// two nodes asking each other for space at the same moment.
export class KeyedQueue {
  readonly #tails = new Map<string, Promise<unknown>>();

  run<T>(key: string, operation: () => Promise<T>): Promise<T> {
    const previous = this.#tails.get(key) ?? Promise.resolve();
    const next = previous.then(operation, operation);
    const tail = next.then(
      () => undefined,
      () => undefined,
    );
    this.#tails.set(key, tail);
    // Forget idle keys so dropped spaces do not accumulate.
    void tail.then(() => {
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    });
    return next;
  }
}
