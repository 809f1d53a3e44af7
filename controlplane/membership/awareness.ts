// Lifeguard local health awareness (LHA). A node that misses acks because
// it is itself overloaded or badly connected would otherwise accuse healthy
// peers. Instead it keeps a health score — raised by evidence that the
// problem is local, lowered by successful probes — and stretches its own
// probe interval and timeout by (score + 1).

export class Awareness {
  readonly #max: number;
  #score = 0;

  /** maxMultiplier: the largest factor timeouts may be stretched by. */
  constructor(maxMultiplier: number) {
    this.#max = Math.max(0, Math.floor(maxMultiplier) - 1);
  }

  get score(): number {
    return this.#score;
  }

  apply(delta: number): void {
    this.#score = Math.min(this.#max, Math.max(0, this.#score + delta));
  }

  scale(ms: number): number {
    return ms * (this.#score + 1);
  }
}
