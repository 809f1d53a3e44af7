// Counts what failure detection does, for metrics: SWIM messages by kind in
// each direction, suspicions raised by this node's view, and refutations
// (this node raising its own incarnation to outbid a claim about it), and
// SWIM datagrams dropped unread, by reason (swim-udp.ts). Read
// from the effects the state machine already emits, so the pure membership
// code stays free of metrics.
import type { Effect, SwimMessage } from '../../controlplane/membership/index.ts';
import type { DropReason } from './swim-datagram.ts';

export type SwimKind = SwimMessage['kind'];
const KINDS: readonly SwimKind[] = ['ping', 'ack', 'pingReq', 'nack', 'gossip'];
const DROP_REASONS: readonly DropReason[] = ['oversized', 'undecryptable', 'badSignature', 'badPacket', 'notMember'];

export class SwimCounters {
  readonly sent = zeroByKind();
  readonly received = zeroByKind();
  /** A member this node held alive turned suspect. */
  suspicions = 0;
  /** This node raised its incarnation to refute a claim. */
  refutations = 0;
  /** Datagrams dropped unread, by reason. */
  readonly dropped = Object.fromEntries(DROP_REASONS.map((r) => [r, 0])) as Record<DropReason, number>;
  readonly #selfId: string;
  #selfIncarnation: number;

  constructor(selfId: string, selfIncarnation: number) {
    this.#selfId = selfId;
    this.#selfIncarnation = selfIncarnation;
  }

  receivedMessage(message: SwimMessage): void {
    this.received[message.kind] += 1;
  }

  effect(effect: Effect): void {
    if (effect.kind === 'send') this.sent[effect.message.kind] += 1;
    if (effect.kind !== 'member-changed') return;
    const { member, previous } = effect;
    if (member.id === this.#selfId) {
      if (member.incarnation > this.#selfIncarnation && member.state === 'alive') this.refutations += 1;
      this.#selfIncarnation = member.incarnation;
    } else if (member.state === 'suspect' && previous !== 'suspect') this.suspicions += 1;
  }
}

function zeroByKind(): Record<SwimKind, number> {
  return Object.fromEntries(KINDS.map((k) => [k, 0])) as Record<SwimKind, number>;
}
