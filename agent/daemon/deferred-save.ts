// Coalesces bursts of changes into one save a little later, and saves at once
// on shutdown if anything is still pending: state files are rewritten whole,
// so writing once per burst instead of once per change matters.
export class DeferredSave {
  readonly #delayMs: number;
  readonly #save: () => void;
  #timer: NodeJS.Timeout | undefined;

  constructor(delayMs: number, save: () => void) {
    this.#delayMs = delayMs;
    this.#save = save;
  }

  schedule(): void {
    this.#timer ??= setTimeout(() => {
      this.#timer = undefined;
      this.#save();
    }, this.#delayMs);
  }

  /** Saves now if a save is pending; used on shutdown. */
  flush(): void {
    if (!this.#timer) return;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#save();
  }
}
