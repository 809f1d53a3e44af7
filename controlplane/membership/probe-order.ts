// SWIM's round-robin probe order: every member is probed once per round,
// which bounds the time to first detection by one round (pure random
// choice only bounds it in expectation). The list is reshuffled every
// round so that nodes do not fall into lock-step on the same target.

import type { Rng } from './rng.ts';
import { randomInt, shuffle } from './rng.ts';

export class ProbeOrder {
  readonly #ids: string[] = [];
  #index = 0;

  /** Every member but self, including dead ones until reaped. */
  get ids(): readonly string[] {
    return this.#ids;
  }

  /**
   * Swaps a newcomer into a random slot: appending would make every node
   * probe a fresh joiner at the same moment at the end of its round.
   */
  insert(rng: Rng, id: string): void {
    this.#ids.push(id);
    const last = this.#ids.length - 1;
    const j = randomInt(rng, this.#ids.length);
    this.#ids[last] = this.#ids[j] as string;
    this.#ids[j] = id;
  }

  remove(id: string): void {
    const i = this.#ids.indexOf(id);
    if (i < 0) return;
    this.#ids.splice(i, 1);
    if (i < this.#index) this.#index--;
  }

  /** Next member to probe among those `eligible` accepts, or undefined. */
  next(rng: Rng, eligible: (id: string) => boolean): string | undefined {
    for (let checked = 0; checked < this.#ids.length; checked++) {
      if (this.#index >= this.#ids.length) {
        shuffle(rng, this.#ids);
        this.#index = 0;
      }
      const id = this.#ids[this.#index++] as string;
      if (eligible(id)) return id;
    }
    return undefined;
  }
}
