// Runs tasks for the same key one after another, whatever their outcome.
// Users: the data plane (two overlapping read-diff-apply passes on one network
// would each apply a diff computed before the other's changes), the allocator
// (two local allocations must not interleave their steps on one space), and
// the agent's and overlay's "one operation at a time" sections. Idle keys are
// forgotten, so dropped networks or spaces do not accumulate.
export class KeyedSerializer {
  readonly #tails = new Map<string, Promise<unknown>>();

  run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const previous = this.#tails.get(key) ?? Promise.resolve();
    const current = previous.then(task, task);
    const tail = current.catch(() => undefined);
    this.#tails.set(key, tail);
    void tail.then(() => {
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    });
    return current;
  }

  /** Runs `task` holding every key in `keys` (taken in sorted order, so two callers cannot deadlock). */
  runAll<T>(keys: readonly string[], task: () => Promise<T>): Promise<T> {
    const sorted = [...new Set(keys)].sort();
    const step = (i: number): Promise<T> => (i === sorted.length ? task() : this.run(sorted[i]!, () => step(i + 1)));
    return step(0);
  }
}

/** One queue: operations run one at a time, in call order. */
export class Serializer {
  readonly #keyed = new KeyedSerializer();

  run<T>(task: () => Promise<T>): Promise<T> {
    return this.#keyed.run('', task);
  }
}
