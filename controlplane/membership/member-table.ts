// The local view: one record per known member, self included. Records are
// replaced, never mutated, so a MemberView handed out stays valid.

import type { MemberState } from './messages.ts';

export interface MemberView {
  id: string;
  address: string;
  state: MemberState;
  incarnation: number;
  /** Local time at which this node last saw the member's state change. */
  stateChangedAt: number;
}

/** alive and suspect members still take part (are probed, count in N). */
export function isActive(state: MemberState): boolean {
  return state === 'alive' || state === 'suspect';
}

export class MemberTable {
  readonly #records = new Map<string, MemberView>();
  #active = 0;

  get(id: string): MemberView | undefined {
    return this.#records.get(id);
  }

  set(record: MemberView): void {
    const old = this.#records.get(record.id);
    if (old !== undefined && isActive(old.state)) this.#active--;
    if (isActive(record.state)) this.#active++;
    this.#records.set(record.id, record);
  }

  delete(id: string): void {
    const old = this.#records.get(id);
    if (old === undefined) return;
    if (isActive(old.state)) this.#active--;
    this.#records.delete(id);
  }

  /** Alive + suspect members, self included: the N of the SWIM formulas. */
  get activeCount(): number {
    return this.#active;
  }

  get size(): number {
    return this.#records.size;
  }

  values(): IterableIterator<MemberView> {
    return this.#records.values();
  }
}
