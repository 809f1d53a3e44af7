// The allocation ring (Weave Net's IPAM ring): an integer space [start, end)
// cut at tokens. A token owns the values from its start up to the next
// token's start (or the end of the space). The ring is the wire-visible,
// replicated part of allocation; which values inside a range are taken is
// private to the range's owner, which publishes only a free count.
//
// Tokens are never removed. A removed token would come back from any peer
// that still has it, and telling "removed" from "not heard of yet" would
// need tombstones; a few thousand tokens cost nothing.

export interface Token {
  start: number;
  owner: string;
  /** Bumped by the owner on every change; only the owner changes a token. */
  version: number;
  /** Free values in this token's range, as last published by its owner. */
  free: number;
}

export interface RingState {
  /** Which space this is ("vni", "subnets", "ips/<network>", ...). */
  space: string;
  start: number;
  end: number;
  /** Sorted by start, strictly increasing. Empty: this node has not heard the ring yet. */
  tokens: readonly Token[];
}

export interface Range {
  start: number;
  end: number;
  token: Token;
}

/** A ring nobody has shared with us yet: a joining node starts here. */
export function emptyRing(space: string, start: number, end: number): RingState {
  checkSpace(start, end);
  return { space, start, end, tokens: [] };
}

/** The first node of a cluster owns the whole space. */
export function initialRing(space: string, start: number, end: number, owner: string): RingState {
  checkSpace(start, end);
  return { space, start, end, tokens: [{ start, owner, version: 1, free: end - start }] };
}

function checkSpace(start: number, end: number): void {
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end <= start) {
    throw new RangeError(`an allocation space must be integers 0 <= start < end, got [${start}, ${end})`);
  }
}

/** Index of the token whose range holds `value`, or -1. */
export function tokenIndexAt(ring: RingState, value: number): number {
  if (value < ring.start || value >= ring.end) return -1;
  let lo = 0;
  let hi = ring.tokens.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((ring.tokens[mid] as Token).start <= value) lo = mid + 1;
    else hi = mid;
  }
  return lo - 1;
}

export function rangeEnd(ring: RingState, index: number): number {
  return ring.tokens[index + 1]?.start ?? ring.end;
}

export function ownerOf(ring: RingState, value: number): string | undefined {
  return ring.tokens[tokenIndexAt(ring, value)]?.owner;
}

export function ranges(ring: RingState): Range[] {
  return ring.tokens.map((token, i) => ({ start: token.start, end: rangeEnd(ring, i), token }));
}

export function rangesOwnedBy(ring: RingState, node: string): Range[] {
  return ranges(ring).filter((r) => r.token.owner === node);
}

/** Why a received ring cannot be a ring, or undefined when it is well formed. */
export function ringMalformation(ring: RingState): string | undefined {
  if (!Number.isSafeInteger(ring.start) || !Number.isSafeInteger(ring.end) || ring.start < 0 || ring.end <= ring.start) return `bad space bounds [${ring.start}, ${ring.end})`;
  if (ring.tokens.length > 0 && ring.tokens[0]?.start !== ring.start) return `the first token must sit at the start of the space (${ring.start})`;
  for (let i = 0; i < ring.tokens.length; i++) {
    const t = ring.tokens[i] as Token;
    const end = rangeEnd(ring, i);
    if (!Number.isSafeInteger(t.start) || t.start >= end) return `token ${t.start} is out of order or outside the space`;
    if (typeof t.owner !== 'string' || t.owner === '') return `token ${t.start} has no owner`;
    if (!Number.isSafeInteger(t.version) || t.version < 1) return `token ${t.start} has a bad version ${t.version}`;
    if (!Number.isSafeInteger(t.free) || t.free < 0 || t.free > end - t.start) return `token ${t.start} claims ${t.free} free values in a range of ${end - t.start}`;
  }
  return undefined;
}
