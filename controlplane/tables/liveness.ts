// Which owners' entries are hidden. Membership decides liveness; the tables
// only remember its verdicts. Unknown nodes count as live: entries from a new
// member can arrive before membership has announced it, and hiding them
// until then would make a joining node's endpoints flicker.

export class NodeLiveness {
  readonly #dead = new Set<string>();
  readonly #forgotten = new Set<string>();

  isDead(node: string): boolean {
    return this.#dead.has(node);
  }

  /** Forgotten nodes were reaped by membership; their entries are refused. */
  isForgotten(node: string): boolean {
    return this.#forgotten.has(node);
  }

  /** Returns true when the node was dead or forgotten before. */
  markLive(node: string): boolean {
    const wasDown = this.#dead.delete(node);
    const wasForgotten = this.#forgotten.delete(node);
    return wasDown || wasForgotten;
  }

  /** Returns true when the node was live before. */
  markDead(node: string): boolean {
    if (this.#dead.has(node)) return false;
    this.#dead.add(node);
    return true;
  }

  forget(node: string): void {
    this.#dead.add(node);
    this.#forgotten.add(node);
  }
}
