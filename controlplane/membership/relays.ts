// Indirect probes we perform for others (their ping-req): we ping the
// target under our own sequence number and relay its ack, or send a nack
// when it stays silent, so the requester can tell "target down" from "my
// own network is bad".

export interface Relay {
  requester: string;
  requesterAddress: string;
  requesterSeq: number;
  nack: boolean;
  deadline: number;
}

export class Relays {
  readonly #bySeq = new Map<number, Relay>();

  add(seq: number, relay: Relay): void {
    this.#bySeq.set(seq, relay);
  }

  /** The relay waiting for the ack `seq`, removed. */
  take(seq: number): Relay | undefined {
    const relay = this.#bySeq.get(seq);
    if (relay !== undefined) this.#bySeq.delete(seq);
    return relay;
  }

  /** Relays whose target stayed silent until `now`, removed. */
  expire(now: number): Relay[] {
    const expired: Relay[] = [];
    for (const [seq, relay] of this.#bySeq) {
      if (relay.deadline > now) continue;
      expired.push(relay);
      this.#bySeq.delete(seq);
    }
    return expired;
  }

  earliest(): number {
    let earliest = Infinity;
    for (const relay of this.#bySeq.values()) earliest = Math.min(earliest, relay.deadline);
    return earliest;
  }
}
