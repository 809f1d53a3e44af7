// The one outstanding probe of this node (SWIM probes one member per
// interval). Phases: direct ping until the probe timeout, then indirect
// pings through relays until the end of the interval, then failure.
// Awareness deltas follow Lifeguard: only evidence that *we* are the
// problem (missing nacks, a failed probe without relays) raises our score.

export interface ActiveProbe {
  target: string;
  targetAddress: string;
  seq: number;
  directDeadline: number;
  finalDeadline: number;
  indirect: boolean;
  expectedNacks: number;
  nacks: number;
}

export type ProbeStep =
  | { kind: 'go-indirect'; probe: ActiveProbe }
  | { kind: 'failed'; probe: ActiveProbe; awarenessDelta: number };

export class Prober {
  #active: ActiveProbe | null = null;

  get active(): ActiveProbe | null {
    return this.#active;
  }

  start(target: string, targetAddress: string, seq: number, directDeadline: number, finalDeadline: number): void {
    this.#active = {
      target,
      targetAddress,
      seq,
      directDeadline,
      finalDeadline,
      indirect: false,
      expectedNacks: 0,
      nacks: 0,
    };
  }

  cancel(): void {
    this.#active = null;
  }

  /** Records the relays asked; nacks are expected only if we asked for them. */
  wentIndirect(relays: number, nacksRequested: boolean): void {
    if (this.#active === null) return;
    this.#active.indirect = true;
    this.#active.expectedNacks = nacksRequested ? relays : 0;
  }

  /**
   * An ack for `seq`; returns the awareness delta, or null if it is not for
   * the current probe (late, or a relayed probe of someone else).
   */
  acked(seq: number): number | null {
    const probe = this.#active;
    if (probe === null || probe.seq !== seq) return null;
    this.#active = null;
    // Only a timely direct ack is evidence of our own good health.
    return probe.indirect ? 0 : -1;
  }

  nacked(seq: number): void {
    if (this.#active !== null && this.#active.seq === seq) this.#active.nacks++;
  }

  due(now: number): ProbeStep | null {
    const probe = this.#active;
    if (probe === null) return null;
    if (!probe.indirect && now >= probe.directDeadline) return { kind: 'go-indirect', probe };
    if (probe.indirect && now >= probe.finalDeadline) {
      this.#active = null;
      return { kind: 'failed', probe, awarenessDelta: failureDelta(probe) };
    }
    return null;
  }

  deadline(): number {
    const probe = this.#active;
    if (probe === null) return Infinity;
    return probe.indirect ? probe.finalDeadline : probe.directDeadline;
  }
}

/**
 * Relays that sent a nack proved our link to them works, so the silence is
 * the target's. Relays that sent nothing, or having no relay to ask at all,
 * point at us.
 */
function failureDelta(probe: ActiveProbe): number {
  if (probe.expectedNacks > 0) return Math.max(0, probe.expectedNacks - probe.nacks);
  return 1;
}
