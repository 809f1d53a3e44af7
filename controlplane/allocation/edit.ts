// Edits a node makes to its own tokens. Each returns a new ring (rings are
// shared with peers and snapshots, so they are never mutated) and refuses to
// touch a range the node does not own: that rule is what makes the ring a
// conflict-free replicated type.

import { rangeEnd, tokenIndexAt } from './ring.ts';
import type { RingState, Token } from './ring.ts';

export class NotOwnerError extends Error {
  constructor(self: string, value: number, owner: string | undefined) {
    super(`node ${self} cannot edit the ring at ${value}: it belongs to ${owner ?? 'nobody known'}`);
    this.name = 'NotOwnerError';
  }
}

/**
 * Makes sure a token starts at `at`, splitting the owned range around it.
 * The new token inherits the owner; free counts are the caller's to set.
 */
export function splitAt(ring: RingState, self: string, at: number): RingState {
  if (at === ring.end) return ring;
  const i = tokenIndexAt(ring, at);
  const token = ring.tokens[i];
  if (token?.start === at) return ring;
  if (token?.owner !== self) throw new NotOwnerError(self, at, token?.owner);
  // Version 1 is safe for a new token: tokens are never removed, so no token
  // ever stood here, and only this node (the range's owner) can create one.
  const fresh: Token = { start: at, owner: self, version: 1, free: 0 };
  return { ...ring, tokens: [...ring.tokens.slice(0, i + 1), fresh, ...ring.tokens.slice(i + 1)] };
}

/** Changes owner and/or free count of a token this node owns, bumping its version. */
export function updateToken(ring: RingState, self: string, start: number, change: { owner?: string; free?: number }): RingState {
  const i = tokenIndexAt(ring, start);
  const token = ring.tokens[i];
  if (token === undefined || token.start !== start) throw new Error(`no token starts at ${start}`);
  if (token.owner !== self) throw new NotOwnerError(self, start, token.owner);
  const owner = change.owner ?? token.owner;
  const free = change.free ?? token.free;
  if (free < 0 || free > rangeEnd(ring, i) - start) throw new RangeError(`token ${start} cannot have ${free} free values`);
  if (owner === token.owner && free === token.free) return ring;
  const tokens = [...ring.tokens];
  tokens[i] = { start, owner, version: token.version + 1, free };
  return { ...ring, tokens };
}

/**
 * Hands every token of `from` to `to` (graceful leave by `from` itself, or
 * an explicit reclaim of a dead node). `freeOf` gives each token's new
 * free count. The caller is `self`; for a reclaim, self is not the owner,
 * which is exactly why reclaim is a separate, deliberate operation.
 */
export function transferAll(ring: RingState, from: string, to: string, freeOf: (start: number, end: number, token: Token) => number): RingState {
  const tokens = ring.tokens.map((token, i) =>
    token.owner === from ? { start: token.start, owner: to, version: token.version + 1, free: freeOf(token.start, rangeEnd(ring, i), token) } : token,
  );
  return { ...ring, tokens };
}
