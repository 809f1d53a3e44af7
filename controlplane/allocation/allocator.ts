// One node's allocator for one space (VNIs, pool subnets, a network's IPs,
// its service VIPs). It allocates only inside ranges this node owns on the
// ring, asks an owner for space when it has none, and refuses with a clear
// error when no owner it could ask is reachable: it never guesses, so a
// value is never handed out twice, even under partition.
//
// Pure: reachability is the caller's knowledge (membership), messages are
// returned as values, and replies are fed back in.

import { allocErrors } from './errors.ts';
import type { AllocError } from './errors.ts';
import { splitAt, transferAll, updateToken } from './edit.ts';
import { IntervalSet } from './intervals.ts';
import type { Run } from './intervals.ts';
import { explainConflict, mergeRings } from './merge.ts';
import type { RingConflict } from './merge.ts';
import type { Donation, FreeReply, FreeRequest, Refusal, RefusalReason, SpaceReply, SpaceRequest } from './messages.ts';
import { emptyRing, initialRing, ownerOf, ranges, rangesOwnedBy, ringMalformation, tokenIndexAt } from './ring.ts';
import type { Range, RingState } from './ring.ts';

export type AllocResult = { kind: 'allocated'; value: number } | { kind: 'request'; request: SpaceRequest } | { kind: 'failed'; error: AllocError };

export type FreeResult = { kind: 'freed'; value: number } | { kind: 'forward'; request: FreeRequest } | { kind: 'failed'; error: AllocError };

export type MergeOutcome = { ok: true; changed: boolean } | { ok: false; conflicts: RingConflict[]; explanations: string[] };

export interface AllocatorStats {
  owned: number;
  free: number;
  allocated: number;
  /** Values in ranges handed to this node whose in-use list has not arrived. */
  awaitingHandover: number;
}

export class Allocator {
  readonly self: string;
  #ring: RingState;
  readonly #allocated = new IntervalSet();
  /**
   * Tokens (by start) already checked consistent at a given version and end,
   * so that the check, which counts allocated values in the range, runs once
   * per token version instead of on every allocation.
   */
  readonly #verified = new Map<number, { version: number; end: number }>();
  /** Allocation continues after the last value handed out, so a freed address is not reused at once (stale ARP and DNS caches elsewhere). */
  #cursor: number;

  private constructor(self: string, ring: RingState) {
    if (self === '') throw new Error('an allocator needs the node ID of this node');
    this.self = self;
    this.#ring = ring;
    this.#cursor = ring.start;
  }

  /** A node joining a cluster: it owns nothing until it merges the ring. */
  static join(self: string, space: string, start: number, end: number): Allocator {
    return new Allocator(self, emptyRing(space, start, end));
  }

  /** The node that creates the cluster owns the whole space. */
  static init(self: string, space: string, start: number, end: number): Allocator {
    return new Allocator(self, initialRing(space, start, end, self));
  }

  /** Rebuilds an allocator from persisted state after a restart. */
  static restore(self: string, ring: RingState, allocated: Iterable<number>): Allocator {
    const bad = ringMalformation(ring);
    if (bad !== undefined) throw new Error(`cannot restore the ${ring.space} ring: ${bad}`);
    const allocator = new Allocator(self, ring);
    for (const value of allocated) {
      if (ownerOf(ring, value) !== self) throw new Error(`cannot restore ${ring.space} value ${value}: this node does not own it`);
      allocator.#allocated.add(value);
    }
    return allocator;
  }

  get space(): string {
    return this.#ring.space;
  }

  /** The ring to publish. Never mutated: safe to hand to a serializer. */
  get ring(): RingState {
    return this.#ring;
  }

  allocated(): number[] {
    return this.#allocated.values();
  }

  isAllocated(value: number): boolean {
    return this.#allocated.has(value);
  }

  ownerOf(value: number): string | undefined {
    return ownerOf(this.#ring, value);
  }

  ownedRanges(): Range[] {
    return rangesOwnedBy(this.#ring, this.self);
  }

  stats(): AllocatorStats {
    const stats: AllocatorStats = { owned: 0, free: 0, allocated: this.#allocated.size, awaitingHandover: 0 };
    for (const range of this.ownedRanges()) {
      stats.owned += range.end - range.start;
      if (this.#usable(range)) stats.free += range.token.free;
      else stats.awaitingHandover += range.end - range.start;
    }
    return stats;
  }

  // ---- allocation ---------------------------------------------------------

  /** The next free value this node owns, or a request to send, or why neither is possible. */
  allocate(reachable: Iterable<string>): AllocResult {
    const value = this.#nextFree();
    if (value !== undefined) return this.#take(value);
    return this.#askForSpace(new Set(reachable));
  }

  /**
   * A specific value (a user-requested VNI or subnet). Owned here: taken if
   * free. Owned elsewhere: a request for exactly that value to its owner,
   * who donates it if it is free, or refuses with 'in-use'.
   */
  allocateValue(value: number, reachable: Iterable<string>): AllocResult {
    const ring = this.#ring;
    if (!Number.isSafeInteger(value) || value < ring.start || value >= ring.end) return failed(allocErrors.outOfSpace(ring.space, value, ring.start, ring.end));
    const range = this.#rangeAt(value);
    if (range === undefined) return failed(allocErrors.noRing(ring.space));
    const owner = range.token.owner;
    if (owner !== this.self) {
      if (!new Set(reachable).has(owner)) return failed(allocErrors.valueUnreachable(ring.space, value, owner));
      return { kind: 'request', request: { space: ring.space, from: this.self, to: owner, value } };
    }
    if (!this.#usable(range)) return failed(allocErrors.awaitingHandover(ring.space, value));
    if (this.#allocated.has(value)) return failed(allocErrors.inUse(ring.space, value));
    return this.#take(value);
  }

  /** Frees a value; a value owned elsewhere becomes a request to its owner. */
  free(value: number, reachable: Iterable<string>): FreeResult {
    const ring = this.#ring;
    if (!Number.isSafeInteger(value) || value < ring.start || value >= ring.end) return { kind: 'failed', error: allocErrors.outOfSpace(ring.space, value, ring.start, ring.end) };
    const range = this.#rangeAt(value);
    if (range === undefined) return { kind: 'failed', error: allocErrors.noRing(this.space) };
    const owner = range.token.owner;
    if (owner === this.self) return this.#freeOwned(value, range);
    if (!new Set(reachable).has(owner)) return { kind: 'failed', error: allocErrors.valueUnreachable(this.space, value, owner) };
    return { kind: 'forward', request: { space: this.space, from: this.self, to: owner, value } };
  }

  #freeOwned(value: number, range: Range): FreeResult {
    if (!this.#usable(range)) return { kind: 'failed', error: allocErrors.awaitingHandover(this.space, value) };
    if (!this.#allocated.delete(value)) return { kind: 'failed', error: allocErrors.notAllocated(this.space, value) };
    this.#ring = updateToken(this.#ring, this.self, range.token.start, { free: range.token.free + 1 });
    this.#stillConsistent(range);
    return { kind: 'freed', value };
  }

  #take(value: number): AllocResult {
    const range = this.#rangeAt(value) as Range;
    this.#allocated.add(value);
    this.#ring = updateToken(this.#ring, this.self, range.token.start, { free: range.token.free - 1 });
    this.#stillConsistent(range);
    this.#cursor = value + 1;
    return { kind: 'allocated', value };
  }

  #nextFree(): number | undefined {
    const usable = this.ownedRanges().filter((r) => r.token.free > 0 && this.#usable(r));
    const cursor = this.#cursor;
    for (const r of usable) {
      if (r.end <= cursor) continue;
      const value = this.#allocated.nextAbsent(Math.max(r.start, cursor), r.end);
      if (value !== undefined) return value;
    }
    for (const r of usable) {
      if (r.start >= cursor) break;
      const value = this.#allocated.nextAbsent(r.start, Math.min(r.end, cursor));
      if (value !== undefined) return value;
    }
    return undefined;
  }

  /** Picks the reachable owner publishing the most free space; fails clearly when there is none. */
  #askForSpace(reachable: Set<string>): AllocResult {
    if (this.#ring.tokens.length === 0) return failed(allocErrors.noRing(this.space));
    const freeByOwner = new Map<string, number>();
    for (const r of ranges(this.#ring)) {
      if (r.token.owner !== this.self && r.token.free > 0) freeByOwner.set(r.token.owner, (freeByOwner.get(r.token.owner) ?? 0) + r.token.free);
    }
    if (freeByOwner.size === 0) {
      const waiting = this.ownedRanges().some((r) => !this.#usable(r));
      return failed(waiting ? allocErrors.rangesAwaitingHandover(this.space) : allocErrors.exhausted(this.space));
    }
    const candidates = [...freeByOwner].filter(([owner]) => reachable.has(owner));
    if (candidates.length === 0) return failed(allocErrors.unreachable(this.space, [...freeByOwner.keys()].sort()));
    candidates.sort(([a, fa], [b, fb]) => fb - fa || (a < b ? -1 : 1));
    const [to] = candidates[0] as [string, number];
    return { kind: 'request', request: { space: this.space, from: this.self, to } };
  }

  // ---- serving other nodes ------------------------------------------------

  /** An owner's answer to a request for space: half of its largest free run, or the requested value. */
  handleSpaceRequest(request: SpaceRequest): SpaceReply {
    if (request.space !== this.space || request.from === this.self) return this.#refuse(request, 'not-owner');
    if (request.value !== undefined) return this.#donateValue(request, request.value);
    const run = this.#largestFreeRun();
    if (run === undefined) return this.#refuse(request, 'no-free-space');
    const length = run.end - run.start;
    // Half, so that repeated requests spread space without draining the
    // donor; the upper half, so the donor's own cursor keeps walking up.
    const give = length === 1 ? 1 : Math.floor(length / 2);
    return { kind: 'donated', donation: this.#donate(request.from, run.end - give, run.end, []) };
  }

  #donateValue(request: SpaceRequest, value: number): SpaceReply {
    const range = this.#rangeAt(value);
    if (range === undefined || range.token.owner !== this.self) return this.#refuse(request, 'not-owner');
    if (!this.#usable(range)) return this.#refuse(request, 'awaiting-handover');
    if (this.#allocated.has(value)) return this.#refuse(request, 'in-use');
    return { kind: 'donated', donation: this.#donate(request.from, value, value + 1, []) };
  }

  /** Frees a value on behalf of another node (see free()). */
  handleFreeRequest(request: FreeRequest): FreeReply {
    const range = this.#rangeAt(request.value);
    if (request.space !== this.space || range === undefined || range.token.owner !== this.self) return { kind: 'refused', refusal: this.#refusal(request, 'not-owner') };
    const result = this.#freeOwned(request.value, range);
    if (result.kind === 'freed') return { kind: 'freed', space: this.space, value: request.value };
    const reason: RefusalReason = result.kind === 'failed' && result.error.code === 'awaiting-handover' ? 'awaiting-handover' : 'not-allocated';
    return { kind: 'refused', refusal: this.#refusal(request, reason) };
  }

  #largestFreeRun(): Run | undefined {
    let best: Run | undefined;
    for (const range of this.ownedRanges()) {
      if (range.token.free === 0 || !this.#usable(range)) continue;
      for (const gap of this.#allocated.gapsIn(range.start, range.end)) {
        if (best === undefined || gap.end - gap.start > best.end - best.start) best = gap;
      }
    }
    return best;
  }

  /** Gives [start, end) — free and inside one owned range — to `to`. */
  #donate(to: string, start: number, end: number, allocated: number[]): Donation {
    const enclosing = this.#rangeAt(start) as Range;
    let ring = splitAt(splitAt(this.#ring, this.self, start), this.self, end);
    ring = updateToken(ring, this.self, start, { owner: to, free: end - start - allocated.length });
    this.#ring = this.#refreshOwnFree(ring, enclosing.start, enclosing.end);
    return { space: this.space, from: this.self, to, ring: this.#ring, allocated };
  }

  /** Recomputes the published free count of this node's tokens inside [start, end). */
  #refreshOwnFree(ring: RingState, start: number, end: number): RingState {
    let next = ring;
    for (const r of rangesOwnedBy(ring, this.self)) {
      if (r.start < start || r.start >= end) continue;
      next = updateToken(next, this.self, r.start, { free: r.end - r.start - this.#allocated.countIn(r.start, r.end) });
    }
    return next;
  }

  #refuse(request: SpaceRequest, reason: RefusalReason): SpaceReply {
    return { kind: 'refused', refusal: this.#refusal(request, reason) };
  }

  #refusal(request: SpaceRequest | FreeRequest, reason: RefusalReason): Refusal {
    const refusal: Refusal = { space: this.space, from: this.self, to: request.from, reason, ring: this.#ring };
    if (request.value !== undefined) refusal.value = request.value;
    return refusal;
  }

  // ---- receiving ----------------------------------------------------------

  /** Merges a peer's ring (gossip or sync). Conflicts are reported and nothing is merged. */
  merge(remote: RingState): MergeOutcome {
    const result = mergeRings(this.#ring, remote, this.self);
    if (!result.ok) return { ok: false, conflicts: result.conflicts, explanations: result.conflicts.map(explainConflict) };
    this.#ring = result.ring;
    return { ok: true, changed: result.changed };
  }

  receiveReply(reply: SpaceReply): MergeOutcome {
    return reply.kind === 'donated' ? this.receiveDonation(reply.donation) : this.merge(reply.refusal.ring);
  }

  /**
   * Takes ownership handed over by a peer, with the values in it that are
   * still in use. Values outside what this node now owns are ignored: they
   * cannot be ours to protect.
   */
  receiveDonation(donation: Donation): MergeOutcome {
    if (donation.to !== this.self) return conflictOutcome(`a donation for ${donation.to} reached ${this.self}`);
    const merged = this.merge(donation.ring);
    if (!merged.ok) return merged;
    for (const value of donation.allocated) if (ownerOf(this.#ring, value) === this.self) this.#allocated.add(value);
    this.#verified.clear();
    return merged;
  }

  // ---- leaving and reclaiming ---------------------------------------------

  /**
   * Graceful leave: every range this node owns, with the values still in
   * use, goes to `to` (a live, reachable peer). Send the donation to `to`
   * before gossiping the ring: a peer that learns of the handover from the
   * ring alone keeps the ranges unusable until the in-use list arrives.
   * Undefined when this node owns nothing.
   */
  leave(to: string): Donation | undefined {
    if (to === this.self) throw new Error('a node cannot hand its ranges to itself');
    if (this.ownedRanges().length === 0) return undefined;
    const allocated = this.#allocated.takeIn(this.#ring.start, this.#ring.end);
    this.#verified.clear();
    this.#ring = transferAll(this.#ring, this.self, to, (_start, _end, token) => token.free);
    return { space: this.space, from: this.self, to, ring: this.#ring, allocated };
  }

  /**
   * Takes over every range of a dead node (Weave's `rmpeer`). DANGEROUS if
   * the node is not really gone: it keeps allocating in those ranges, and
   * values are handed out twice. Call it only for a node removed for good
   * (`weft node rm`, or dead past the reap time), from ONE node, after a
   * sync with every live member (so this node knows the dead node's latest
   * tokens). `inUse` lists values in those ranges that cluster objects still
   * use (VNIs and subnets of networks, VIPs of services): the dead node's
   * private allocation list died with it. May be repeated, e.g. when a later
   * sync reveals more of the dead node's tokens.
   */
  reclaim(dead: string, inUse: Iterable<number>): number {
    if (dead === this.self) throw new Error('a node cannot reclaim its own ranges');
    const theirs = rangesOwnedBy(this.#ring, dead);
    const keep = [...new Set(inUse)].filter((v) => theirs.some((r) => r.start <= v && v < r.end));
    for (const value of keep) this.#allocated.add(value);
    this.#verified.clear();
    this.#ring = transferAll(this.#ring, dead, this.self, (start, end) => end - start - this.#allocated.countIn(start, end));
    return theirs.length;
  }

  // ---- helpers ------------------------------------------------------------

  #rangeAt(value: number): Range | undefined {
    const i = tokenIndexAt(this.#ring, value);
    const token = this.#ring.tokens[i];
    if (token === undefined) return undefined;
    return { start: token.start, end: this.#ring.tokens[i + 1]?.start ?? this.#ring.end, token };
  }

  /** After an allocate or free in a usable range: one value and one free count moved together. */
  #stillConsistent(range: Range): void {
    const token = this.#ring.tokens[tokenIndexAt(this.#ring, range.start)];
    if (token !== undefined) this.#verified.set(token.start, { version: token.version, end: range.end });
  }

  /**
   * A range is usable when the free count its token publishes matches this
   * node's own list of taken values. The only way they differ is a handover
   * seen through the ring before its donation (with the in-use list)
   * arrived; allocating then could reuse a value the old owner gave out.
   */
  #usable(range: Range): boolean {
    const { token } = range;
    if (token.owner !== this.self) return false;
    const seen = this.#verified.get(token.start);
    if (seen !== undefined && seen.version === token.version && seen.end === range.end) return true;
    const consistent = token.free === range.end - range.start - this.#allocated.countIn(range.start, range.end);
    if (consistent) this.#verified.set(token.start, { version: token.version, end: range.end });
    return consistent;
  }
}

function failed(error: AllocError): AllocResult {
  return { kind: 'failed', error };
}

function conflictOutcome(explanation: string): MergeOutcome {
  return { ok: false, conflicts: [], explanations: [explanation] };
}
