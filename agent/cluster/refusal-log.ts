// Sampled logging of refused joins. A flood would otherwise write a line per
// attempt (disk, and a haystack for the lines that matter): the first few per
// interval are logged in full, the rest are counted and summed up in one line
// at the end of the interval.
import type { Logger } from 'pino';

export interface RefusalLogOptions {
  /** Refusals logged in full per interval. */
  burst: number;
  intervalMs: number;
}

export class RefusalLog {
  readonly #log: Logger;
  readonly #options: RefusalLogOptions;
  #logged = 0;
  #suppressed = 0;
  #addresses = new Set<string>();
  #reasons = new Map<string, number>();
  #timer: NodeJS.Timeout | undefined;

  constructor(log: Logger, options: RefusalLogOptions) {
    this.#log = log;
    this.#options = options;
  }

  refused(peer: string, reason: string): void {
    this.#startInterval();
    if (this.#logged < this.#options.burst) {
      this.#logged += 1;
      this.#log.warn({ peer, reason }, 'refused a join');
      return;
    }
    this.#suppressed += 1;
    if (this.#addresses.size < 1024) this.#addresses.add(peer.replace(/:\d+$/, ''));
    if (this.#reasons.size < 16 || this.#reasons.has(reason)) this.#reasons.set(reason, (this.#reasons.get(reason) ?? 0) + 1);
  }

  #startInterval(): void {
    if (this.#timer) return;
    this.#timer = setTimeout(() => this.#endInterval(), this.#options.intervalMs);
    this.#timer.unref();
  }

  #endInterval(): void {
    this.#timer = undefined;
    if (this.#suppressed > 0) {
      this.#log.warn(
        { suppressed: this.#suppressed, addresses: [...this.#addresses].slice(0, 16), distinctAddresses: this.#addresses.size, reasons: Object.fromEntries(this.#reasons) },
        `refused ${this.#suppressed} more joins in the last ${Math.round(this.#options.intervalMs / 1000)} s (not logged one by one)`,
      );
    }
    this.#logged = 0;
    this.#suppressed = 0;
    this.#addresses = new Set();
    this.#reasons = new Map();
  }

  /** Writes the pending summary now (on shutdown). */
  flush(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#endInterval();
  }
}
