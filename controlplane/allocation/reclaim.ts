// Reclaiming the ranges of nodes that are gone for good (removed with
// `weft node rm`, or left), Weave's `rmpeer` made automatic. Taking over
// another node's tokens is the one ring edit not made by the owner, so it is
// safe only when:
//  - the node cannot allocate in the cluster any more: the roster removed
//    it (or it left) and every member refuses its entries and requests;
//  - exactly one node does it: the active member with the smallest node ID
//    (roster order, not liveness, so two sides of a partition never both
//    think they are it), and every member it syncs with checks that;
//  - that node first has the current ring of every space from every other
//    active member, so it knows the gone node's latest tokens and every range
//    the gone node gave away (a member that received a range publishes it
//    only eventually, but answers a sync with what it holds now).
// A member that is unreachable blocks the reclaim: it may hold a range the
// gone node gave it, and reclaiming over it would hand values out twice.
//
// Pure: the agent supplies the roster, carries the requests and feeds the
// answers in.

import type { RingState } from './ring.ts';

/** The member that reclaims: the active member with the smallest node ID. */
export function chooseReclaimer(active: Iterable<string>): string | undefined {
  let best: string | undefined;
  for (const id of active) if (best === undefined || id < best) best = id;
  return best;
}

/** Gone nodes that still own tokens of `ring`, sorted. */
export function goneOwners(ring: RingState, gone: ReadonlySet<string>): string[] {
  const owners = new Set<string>();
  for (const token of ring.tokens) if (gone.has(token.owner)) owners.add(token.owner);
  return [...owners].sort();
}

export interface RingSyncRequest {
  from: string;
  to: string;
  /** The nodes the sender means to reclaim. */
  gone: string[];
  /** Spaces whose rings the sender needs (besides those where the receiver sees gone owners). */
  spaces: string[];
}

/**
 * Why a member does not answer a reclaimer's sync, from its own roster
 * (undefined: it answers). It refuses a sender that is not the reclaimer in
 * its view, so two nodes never reclaim at once while rosters differ, and a
 * sync about a node it still counts active: until it knows the node is gone
 * it could still accept ranges from it, which the reclaimer would not learn.
 */
export function syncRefusal(request: RingSyncRequest, view: { active: ReadonlySet<string> }): string | undefined {
  const reclaimer = chooseReclaimer(view.active);
  if (request.from !== reclaimer) return `node ${request.to} counts ${reclaimer ?? 'nobody'} as the reclaimer, not ${request.from}`;
  const active = request.gone.filter((id) => view.active.has(id));
  if (active.length > 0) return `node ${request.to} still counts ${active.join(', ')} as active members; retry once the removal has reached it`;
  return undefined;
}

/** What a member answers: its current rings and the values its tables show in use, per space. */
export interface RingSyncAnswer {
  rings: RingState[];
  inUse: Array<{ space: string; values: number[] }>;
}

/** The spaces a member reports: those asked that it hosts, and every space where it sees a gone owner. */
export function spacesToReport(request: RingSyncRequest, rings: Iterable<RingState>): RingState[] {
  const asked = new Set(request.spaces);
  const gone = new Set(request.gone);
  return [...rings].filter((ring) => asked.has(ring.space) || goneOwners(ring, gone).length > 0);
}

export type RoundOutcome =
  | { kind: 'incomplete'; missing: string[] }
  /** Some member sees gone owners in spaces not asked: ask everyone again, about these too. */
  | { kind: 'widen'; spaces: string[] }
  | { kind: 'complete'; spaces: Map<string, { rings: RingState[]; inUse: Set<number> }> };

/**
 * The reclaimer's bookkeeping for one round of syncs: one answer from every
 * other active member, each about every space asked. A space some member
 * reports but others were not asked about needs another round, or the
 * reclaimer would miss ranges the others hold in it.
 */
export class ReclaimRound {
  readonly gone: string[];
  readonly spaces: string[];
  readonly #members: Set<string>;
  readonly #answers = new Map<string, RingSyncAnswer>();

  constructor(members: Iterable<string>, gone: Iterable<string>, spaces: Iterable<string>) {
    this.#members = new Set(members);
    this.gone = [...new Set(gone)].sort();
    this.spaces = [...new Set(spaces)].sort();
  }

  get members(): string[] {
    return [...this.#members].sort();
  }

  request(from: string, to: string): RingSyncRequest {
    return { from, to, gone: [...this.gone], spaces: [...this.spaces] };
  }

  record(member: string, answer: RingSyncAnswer): void {
    if (!this.#members.has(member)) throw new Error(`node ${member} is not part of this reclaim round`);
    this.#answers.set(member, answer);
  }

  outcome(): RoundOutcome {
    const missing = this.members.filter((m) => !this.#answers.has(m));
    if (missing.length > 0) return { kind: 'incomplete', missing };
    const asked = new Set(this.spaces);
    const extra = new Set<string>();
    for (const answer of this.#answers.values()) for (const ring of answer.rings) if (!asked.has(ring.space)) extra.add(ring.space);
    if (extra.size > 0) return { kind: 'widen', spaces: [...asked, ...extra].sort() };
    const spaces = new Map<string, { rings: RingState[]; inUse: Set<number> }>();
    for (const space of this.spaces) spaces.set(space, { rings: [], inUse: new Set() });
    for (const answer of this.#answers.values()) {
      for (const ring of answer.rings) spaces.get(ring.space)?.rings.push(ring);
      for (const { space, values } of answer.inUse) {
        const target = spaces.get(space);
        if (target) for (const v of values) target.inUse.add(v);
      }
    }
    return { kind: 'complete', spaces };
  }
}
