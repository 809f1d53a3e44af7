// A fixed-bucket histogram of durations as plain counters. Layers that must
// not depend on a metrics library (the DNS server's hot path, the overlay's
// programmer) record into it for a few nanoseconds per observation; the agent
// renders it as a Prometheus histogram when it is scraped (agent/metrics).
export class DurationHistogram {
  /** Upper bounds in seconds, ascending; +Inf is implied. */
  readonly bounds: readonly number[];
  /** counts[i]: observations <= bounds[i] and above bounds[i - 1]; the last slot is above every bound. */
  readonly #counts: number[];
  #sum = 0;
  #count = 0;

  constructor(bounds: readonly number[]) {
    if (bounds.length === 0 || bounds.some((b, i) => !(b > 0) || (i > 0 && b <= bounds[i - 1]!))) {
      throw new RangeError('histogram bounds must be positive and strictly ascending');
    }
    this.bounds = [...bounds];
    this.#counts = new Array<number>(bounds.length + 1).fill(0);
  }

  observe(seconds: number): void {
    let i = 0;
    while (i < this.bounds.length && seconds > this.bounds[i]!) i++;
    this.#counts[i]! += 1;
    this.#sum += seconds;
    this.#count += 1;
  }

  /** Cumulative counts per bound (the Prometheus `le` buckets, +Inf last), the sum and the count. */
  snapshot(): { cumulative: number[]; sum: number; count: number } {
    let running = 0;
    const cumulative = this.#counts.map((c) => (running += c));
    return { cumulative, sum: this.#sum, count: this.#count };
  }
}

/** DNS answers take microseconds (cache) to seconds (a slow upstream). */
export const DNS_BOUNDS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 2.5];
/** Kernel programming runs take milliseconds (a few entries) to seconds (thousands). */
export const PROGRAMMING_BOUNDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
