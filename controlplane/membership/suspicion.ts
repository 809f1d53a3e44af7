// Lifeguard suspicion: a suspected member is declared dead when a timeout
// expires, and the timeout shrinks as independent members confirm the
// suspicion. A real crash is confirmed by every prober within about a probe
// round, so it is declared quickly; a lone, loss-induced suspicion waits the
// long upper bound, giving the suspect time to hear of it and refute.

export interface SuspicionBounds {
  minMs: number;
  maxMs: number;
}

/**
 * min = suspicionMult * log10(max(1, N)) * probeInterval: gossip needs
 * O(log N) rounds to reach the suspect and bring its refutation back.
 * max = suspicionMaxTimeoutMult * min.
 */
export function suspicionBounds(
  suspicionMult: number,
  maxTimeoutMult: number,
  probeIntervalMs: number,
  clusterSize: number,
): SuspicionBounds {
  // log10(1) = 0 would make a 2-node cluster declare death instantly; one
  // probe interval is the least that still allows a refutation to arrive.
  const scale = Math.max(1, Math.log10(Math.max(1, clusterSize)));
  const minMs = suspicionMult * scale * probeIntervalMs;
  return { minMs, maxMs: maxTimeoutMult * minMs };
}

/** timeout = max(min, max - (max - min) * log(C + 1) / log(K + 1)). */
export function suspicionTimeout(
  bounds: SuspicionBounds,
  expected: number,
  confirmations: number,
): number {
  if (expected < 1) return bounds.minMs;
  const fraction = Math.log(confirmations + 1) / Math.log(expected + 1);
  const timeout = bounds.maxMs - (bounds.maxMs - bounds.minMs) * fraction;
  return Math.max(bounds.minMs, Math.floor(timeout));
}

/**
 * How many confirmations to wait for: at most the members that could give
 * one (everyone but us and the suspect), so small clusters do not wait
 * for confirmations that cannot come.
 */
export function expectedConfirmations(configured: number, clusterSize: number): number {
  return Math.max(0, Math.min(configured, clusterSize - 2));
}

export class Suspicion {
  readonly startedAt: number;
  readonly incarnation: number;
  readonly #bounds: SuspicionBounds;
  readonly #expected: number;
  // Members whose word counts; the originator is in it from the start but
  // is not a confirmation (it is the accusation itself).
  readonly #seen: Set<string>;
  #confirmations = 0;
  #notBefore = 0;
  #graced = false;

  constructor(
    startedAt: number,
    incarnation: number,
    from: string,
    bounds: SuspicionBounds,
    expected: number,
  ) {
    this.startedAt = startedAt;
    this.incarnation = incarnation;
    this.#bounds = bounds;
    this.#expected = expected;
    this.#seen = new Set([from]);
  }

  get confirmations(): number {
    return this.#confirmations;
  }

  /** Counts `from` once; true when it was new (worth re-gossiping). */
  confirm(from: string): boolean {
    if (this.#confirmations >= this.#expected || this.#seen.has(from)) return false;
    this.#seen.add(from);
    this.#confirmations++;
    return true;
  }

  deadline(): number {
    return Math.max(this.#notBefore, this.startedAt + suspicionTimeout(this.#bounds, this.#expected, this.#confirmations));
  }

  /**
   * Our tick came late: if the timer ran out while we were stalled, wait
   * until `until` (once) so a refutation that arrived meanwhile is read
   * before we declare the member dead.
   */
  defer(now: number, until: number): void {
    if (this.#graced || this.deadline() > now) return;
    this.#graced = true;
    this.#notBefore = until;
  }
}
