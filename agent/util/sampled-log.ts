// Sampled warnings for events that can come in floods (refused joins, failed
// dials to an unreachable member): a flood would otherwise write a line per
// event (disk, and a haystack for the lines that matter). The first few per
// interval are logged in full, the rest are counted and summed up in one line
// at the end of the interval. One instance per kind of event.
import type { Logger } from 'pino';

export interface SampledLogOptions {
  /** Events logged in full per interval. */
  burst: number;
  intervalMs: number;
}

export interface SampledEvent {
  /** The line logged for each event of the burst, e.g. "refused a join". */
  message: string;
  /** Plural noun for the summary line, e.g. "joins refused". */
  summary: string;
  /** Name of the field that holds the event's subject (a peer address, a node ID). */
  subjectField: string;
}

export class SampledLog {
  readonly #log: Logger;
  readonly #options: SampledLogOptions;
  readonly #event: SampledEvent;
  #logged = 0;
  #suppressed = 0;
  #subjects = new Set<string>();
  #reasons = new Map<string, number>();
  #timer: NodeJS.Timeout | undefined;

  constructor(log: Logger, options: SampledLogOptions, event: SampledEvent) {
    this.#log = log;
    this.#options = options;
    this.#event = event;
  }

  /** `subject`: who it is about (an address's port is dropped when summed up); `reason`: why, in words. */
  event(subject: string, reason: string): void {
    this.#startInterval();
    if (this.#logged < this.#options.burst) {
      this.#logged += 1;
      this.#log.warn({ [this.#event.subjectField]: subject, reason }, this.#event.message);
      return;
    }
    this.#suppressed += 1;
    if (this.#subjects.size < 1024) this.#subjects.add(subject.replace(/:\d+$/, ''));
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
        { suppressed: this.#suppressed, subjects: [...this.#subjects].slice(0, 16), distinctSubjects: this.#subjects.size, reasons: Object.fromEntries(this.#reasons) },
        `${this.#suppressed} more ${this.#event.summary} in the last ${Math.round(this.#options.intervalMs / 1000)} s (not logged one by one)`,
      );
    }
    this.#logged = 0;
    this.#suppressed = 0;
    this.#subjects = new Set();
    this.#reasons = new Map();
  }

  /** Writes the pending summary now (on shutdown). */
  flush(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#endInterval();
  }
}
