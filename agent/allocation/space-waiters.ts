// Local operations that cannot proceed yet (no ring so far, a handover on
// its way, an owner awaiting one) wait for their space to change: a merged
// ring, a donation, a freed value. They also poll, since not every change
// that could help them passes through here (a member becoming reachable).
const POLL_MS = 250;

export class SpaceWaiters {
  readonly #waiters = new Map<string, Set<() => void>>();

  /** Wakes everyone waiting on the space. */
  notify(space: string): void {
    const waiters = this.#waiters.get(space);
    if (!waiters) return;
    this.#waiters.delete(space);
    for (const wake of waiters) wake();
  }

  /** Wakes every waiter (the service stops: each finds out on its next check). */
  notifyAll(): void {
    for (const space of [...this.#waiters.keys()]) this.notify(space);
  }

  /** Resolves when the space changes, or after a short poll interval (never later than `deadline`). */
  changeOf(space: string, deadline: number): Promise<void> {
    return new Promise((resolve) => {
      const waiters = this.#waiters.get(space) ?? new Set<() => void>();
      this.#waiters.set(space, waiters);
      const wake = (): void => {
        clearTimeout(timer);
        waiters.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, Math.max(0, Math.min(POLL_MS, deadline - Date.now())));
      waiters.add(wake);
    });
  }
}
