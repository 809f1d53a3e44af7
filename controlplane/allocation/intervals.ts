// A set of integers stored as sorted, disjoint, non-adjacent intervals
// [start, end). Allocated values cluster (allocation walks upward), so a
// node holding thousands of addresses keeps a handful of intervals, and
// "next free value" or "largest free run" cost a binary search plus a walk
// over intervals rather than over values.

export interface Run {
  start: number;
  end: number;
}

export class IntervalSet {
  readonly #runs: Run[] = [];
  #size = 0;

  get size(): number {
    return this.#size;
  }

  has(value: number): boolean {
    const run = this.#runs[this.#firstEndingAfter(value)];
    return run !== undefined && run.start <= value;
  }

  /** Returns false when the value was already a member. */
  add(value: number): boolean {
    const i = this.#firstEndingAfter(value);
    const run = this.#runs[i];
    if (run !== undefined && run.start <= value) return false;
    const before = this.#runs[i - 1];
    const joinsBefore = before !== undefined && before.end === value;
    const joinsAfter = run !== undefined && run.start === value + 1;
    if (joinsBefore && joinsAfter) {
      before.end = run.end;
      this.#runs.splice(i, 1);
    } else if (joinsBefore) before.end = value + 1;
    else if (joinsAfter) run.start = value;
    else this.#runs.splice(i, 0, { start: value, end: value + 1 });
    this.#size += 1;
    return true;
  }

  /** Returns false when the value was not a member. */
  delete(value: number): boolean {
    const i = this.#firstEndingAfter(value);
    const run = this.#runs[i];
    if (run === undefined || run.start > value) return false;
    if (run.start === value && run.end === value + 1) this.#runs.splice(i, 1);
    else if (run.start === value) run.start = value + 1;
    else if (run.end === value + 1) run.end = value;
    else {
      this.#runs.splice(i + 1, 0, { start: value + 1, end: run.end });
      run.end = value;
    }
    this.#size -= 1;
    return true;
  }

  /** Members inside [start, end). */
  countIn(start: number, end: number): number {
    let count = 0;
    for (const run of this.#runsTouching(start, end)) count += Math.min(run.end, end) - Math.max(run.start, start);
    return count;
  }

  valuesIn(start: number, end: number): number[] {
    const values: number[] = [];
    for (const run of this.#runsTouching(start, end)) {
      for (let v = Math.max(run.start, start); v < Math.min(run.end, end); v++) values.push(v);
    }
    return values;
  }

  /** Removes every member inside [start, end) and returns them. */
  takeIn(start: number, end: number): number[] {
    const values = this.valuesIn(start, end);
    for (const v of values) this.delete(v);
    return values;
  }

  /** The smallest non-member in [from, end), if any. */
  nextAbsent(from: number, end: number): number | undefined {
    let candidate = from;
    for (const run of this.#runsTouching(from, end)) {
      if (run.start > candidate) break;
      candidate = run.end;
    }
    return candidate < end ? candidate : undefined;
  }

  /** Maximal runs of non-members inside [start, end). */
  gapsIn(start: number, end: number): Run[] {
    const gaps: Run[] = [];
    let cursor = start;
    for (const run of this.#runsTouching(start, end)) {
      if (run.start > cursor) gaps.push({ start: cursor, end: run.start });
      cursor = Math.max(cursor, run.end);
    }
    if (cursor < end) gaps.push({ start: cursor, end });
    return gaps;
  }

  values(): number[] {
    return this.#runs.flatMap((r) => this.valuesIn(r.start, r.end));
  }

  *#runsTouching(start: number, end: number): Generator<Run> {
    for (let i = this.#firstEndingAfter(start); i < this.#runs.length; i++) {
      const run = this.#runs[i] as Run;
      if (run.start >= end) return;
      yield run;
    }
  }

  /** Index of the first run whose end is greater than `value`. */
  #firstEndingAfter(value: number): number {
    let lo = 0;
    let hi = this.#runs.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.#runs[mid] as Run).end > value) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }
}
