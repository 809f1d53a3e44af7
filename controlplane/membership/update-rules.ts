// Which incoming membership facts win. Incarnation numbers order a member's
// own statements; at equal incarnation alive < suspect < dead < left, so an
// accusation beats the claim it accuses and only the member itself can
// override it, by refuting with a higher incarnation. Kept pure so the
// rules can be tested on their own.

import type { MemberView } from './member-table.ts';
import type { MemberState } from './messages.ts';

export interface Claim {
  state: MemberState;
  incarnation: number;
  address: string;
}

/**
 * ignore: stale or redundant. apply: adopt the claim. confirm: another
 * voice for a suspicion we already hold. refute: the claim is about us and
 * must be contradicted with a higher incarnation. reannounce: an accusation
 * we already refuted is still around, so someone missed our refutation:
 * spread it again (no new incarnation needed).
 */
export type Verdict = 'ignore' | 'apply' | 'confirm' | 'refute' | 'reannounce';

/** A claim about ourselves; `self` is our own record. */
export function judgeSelf(self: MemberView, claim: Claim): Verdict {
  // Once we have left we stay gone; nothing is worth contradicting.
  if (self.state === 'left') return 'ignore';
  if (claim.state === 'alive') {
    // Someone speaks for us with a newer incarnation or another address:
    // typically our previous life before a restart. Outbid it.
    if (claim.incarnation > self.incarnation) return 'refute';
    if (claim.incarnation === self.incarnation && claim.address !== self.address) return 'refute';
    return 'ignore';
  }
  if (claim.incarnation >= self.incarnation) return 'refute';
  return claim.state === 'left' ? 'ignore' : 'reannounce';
}

// At equal incarnation an accusation outranks the claim it accuses, and a
// deliberate leave outranks a verdict of death.
const RANK: Readonly<Record<MemberState, number>> = { alive: 0, suspect: 1, dead: 2, left: 3 };

/** Positive when `a` is newer than `b` in the (incarnation, rank) order. */
export function compareClaims(a: Claim, b: Claim): number {
  return a.incarnation - b.incarnation || RANK[a.state] - RANK[b.state];
}

/**
 * A claim about another member; `current` is undefined when unknown.
 * Known members move only up the (incarnation, rank) order, so the view is
 * the maximum of every claim received: the same whatever order gossip
 * delivered them in.
 */
export function judgeOther(current: MemberView | undefined, claim: Claim): Verdict {
  // Suspect/dead/left about a stranger would only resurrect a forgotten
  // (reaped) member; strangers enter by being alive.
  if (current === undefined) return claim.state === 'alive' ? 'apply' : 'ignore';
  const order = compareClaims(claim, current);
  if (order > 0) return 'apply';
  if (order === 0 && claim.state === 'suspect') return 'confirm';
  return 'ignore';
}

/** The wire carries incarnations as uint32 (proto/swim.proto). */
export const MAX_INCARNATION = 2 ** 32 - 1;
/**
 * How far ahead of what we hold (0 for a stranger) a claim's incarnation may
 * be. Only the member raises its own incarnation, by one per refutation, so
 * an honest claim is never far ahead: a million refutations is weeks of
 * constant suspicion. Without a bound one forged claim at 2^32-1 would make
 * the member refute to 2^32, which uint32 carries as 0: the member could
 * never outbid an accusation again.
 */
export const MAX_INCARNATION_JUMP = 2 ** 20;

/**
 * Why a claim's incarnation is refused, given the incarnation we hold for
 * that member (ourselves included), or undefined when it is plausible. Claims
 * at the ceiling are refused too: refuting them would need MAX_INCARNATION + 1.
 */
export function implausibleIncarnation(claimed: number, held: number | undefined): string | undefined {
  if (claimed >= MAX_INCARNATION) return `incarnation ${claimed} leaves no room to refute it`;
  if (claimed > (held ?? 0) + MAX_INCARNATION_JUMP) return `incarnation ${claimed} runs more than ${MAX_INCARNATION_JUMP} ahead of ${held ?? 0}`;
  return undefined;
}
