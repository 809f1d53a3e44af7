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
  /** The phase (direct or indirect) already given its one grace for a late tick. */
  graced: { direct: boolean; indirect: boolean };
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
      graced: { direct: false, indirect: false },
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
    // Only a timely direct ack is evidence of our own good health; one read
    // in the grace after our own stall is not.
    return probe.indirect || probe.graced.direct ? 0 : -1;
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

  /**
   * Our own tick came late: if the current phase's deadline has passed,
   * move it to `until` (once per phase), so that an answer that arrived
   * while we were stalled is read before the phase is judged. The indirect
   * round keeps its full length after a deferred direct phase.
   */
  defer(now: number, until: number): void {
    const probe = this.#active;
    if (probe === null) return;
    if (!probe.indirect && probe.directDeadline <= now && !probe.graced.direct) {
      probe.graced.direct = true;
      probe.finalDeadline = Math.max(probe.finalDeadline, until + (probe.finalDeadline - probe.directDeadline));
      probe.directDeadline = until;
    } else if (probe.indirect && probe.finalDeadline <= now && !probe.graced.indirect) {
      probe.graced.indirect = true;
      probe.finalDeadline = until;
    }
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
