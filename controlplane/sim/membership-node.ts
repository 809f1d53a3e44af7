// Runs the real Membership state machine as a SimNode, and reports its
// view changes to an observer so scenarios can measure detection times.

import type { Effect } from '../membership/effects.ts';
import type { Membership } from '../membership/membership.ts';
import type { SwimMessage } from '../membership/messages.ts';
import type { Envelope, SimNode } from './simulator.ts';

export type EffectObserver = (observer: string, now: number, effect: Effect) => void;

export class MembershipNode implements SimNode<SwimMessage> {
  readonly membership: Membership;
  readonly #observe: EffectObserver;
  /** Messages sent, by kind, for cost reporting. */
  readonly sentByKind = new Map<string, number>();

  constructor(membership: Membership, observe: EffectObserver) {
    this.membership = membership;
    this.#observe = observe;
  }

  get id(): string {
    return this.membership.id;
  }

  handle(now: number, from: string, message: SwimMessage): Envelope<SwimMessage>[] {
    return this.route(now, this.membership.handle(now, from, message));
  }

  tick(now: number): Envelope<SwimMessage>[] {
    return this.route(now, this.membership.tick(now));
  }

  nextWakeAt(): number {
    return this.membership.nextDeadline();
  }

  /** Sends become envelopes (the sim routes by node ID); the rest goes to the observer. */
  route(now: number, effects: readonly Effect[]): Envelope<SwimMessage>[] {
    const out: Envelope<SwimMessage>[] = [];
    for (const effect of effects) {
      if (effect.kind === 'send') {
        out.push({ to: effect.to, message: effect.message });
        this.sentByKind.set(effect.message.kind, (this.sentByKind.get(effect.message.kind) ?? 0) + 1);
      } else {
        this.#observe(this.id, now, effect);
      }
    }
    return out;
  }
}
