// One async job that many events ask for: at most one run at a time, and
// requests while it runs collapse into a single run after it. The service
// plane and the overlay programmer recompute the whole desired state each
// run, so a burst of table changes costs two runs, not one per change.
export class CoalescedRun {
  readonly #job: () => Promise<void>;
  #running: Promise<void> | undefined;
  #again = false;

  constructor(job: () => Promise<void>) {
    this.#job = job;
  }

  trigger(): void {
    if (this.#running) {
      this.#again = true;
      return;
    }
    this.#running = this.#job().finally(() => {
      this.#running = undefined;
      if (this.#again) {
        this.#again = false;
        this.trigger();
      }
    });
  }

  /** Resolves when no run is in progress or pending. */
  async settled(): Promise<void> {
    while (this.#running) await this.#running;
  }
}
