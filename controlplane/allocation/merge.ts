// Merging two views of a ring. Because only a token's owner changes it,
// "highest version wins" per token never has to choose between two edits,
// and the union of tokens is the ring. Anything that breaks that premise is
// a conflict, reported and never merged: two different tokens with the same
// version (two nodes initialised the same space, or a node lost its state),
// a peer's newer version of a token this node owns, or a peer's token
// inside a range this node owns (someone carved up our range). Accepting
// any of those could hand the same value out twice.

import { ownerOf, ringMalformation } from './ring.ts';
import type { RingState, Token } from './ring.ts';

export type RingConflict =
  | { kind: 'malformed'; reason: string }
  | { kind: 'space-mismatch'; local: string; remote: string }
  | { kind: 'same-version'; start: number; local: Token; remote: Token }
  | { kind: 'ownership-taken'; start: number; local: Token; remote: Token }
  | { kind: 'range-split'; start: number; remote: Token };

export type RingMerge = { ok: true; ring: RingState; changed: boolean } | { ok: false; conflicts: RingConflict[] };

export function mergeRings(local: RingState, remote: RingState, self: string): RingMerge {
  const bad = ringMalformation(remote);
  if (bad !== undefined) return { ok: false, conflicts: [{ kind: 'malformed', reason: bad }] };
  if (remote.space !== local.space || remote.start !== local.start || remote.end !== local.end) {
    return { ok: false, conflicts: [{ kind: 'space-mismatch', local: describe(local), remote: describe(remote) }] };
  }
  const conflicts: RingConflict[] = [];
  const tokens: Token[] = [];
  let changed = false;
  let i = 0;
  let j = 0;
  while (i < local.tokens.length || j < remote.tokens.length) {
    const l = local.tokens[i];
    const r = remote.tokens[j];
    if (l !== undefined && (r === undefined || l.start < r.start)) {
      tokens.push(l);
      i++;
    } else if (r !== undefined && (l === undefined || r.start < l.start)) {
      if (ownerOf(local, r.start) === self) conflicts.push({ kind: 'range-split', start: r.start, remote: r });
      tokens.push(r);
      changed = true;
      j++;
    } else if (l !== undefined && r !== undefined) {
      const pick = pickToken(l, r, self, conflicts);
      if (pick !== l) changed = true;
      tokens.push(pick);
      i++;
      j++;
    }
  }
  if (conflicts.length > 0) return { ok: false, conflicts };
  return { ok: true, ring: changed ? { ...local, tokens } : local, changed };
}

function pickToken(l: Token, r: Token, self: string, conflicts: RingConflict[]): Token {
  if (r.version < l.version) return l;
  if (r.version === l.version) {
    if (r.owner !== l.owner || r.free !== l.free) conflicts.push({ kind: 'same-version', start: l.start, local: l, remote: r });
    return l;
  }
  if (l.owner === self) conflicts.push({ kind: 'ownership-taken', start: l.start, local: l, remote: r });
  return r;
}

function describe(ring: RingState): string {
  return `${ring.space} [${ring.start}, ${ring.end})`;
}

/** One line per conflict, for logs and `weft doctor`. */
export function explainConflict(c: RingConflict): string {
  switch (c.kind) {
    case 'malformed':
      return `rejected a malformed ring: ${c.reason}`;
    case 'space-mismatch':
      return `rejected a ring for ${c.remote}; this node allocates ${c.local}`;
    case 'same-version':
      return `token ${c.start} has version ${c.local.version} here (owner ${c.local.owner}, ${c.local.free} free) and a different content at the same version on the peer (owner ${c.remote.owner}, ${c.remote.free} free): two nodes wrote the same token, e.g. both initialised the space or one lost its state`;
    case 'ownership-taken':
      if (c.remote.owner === c.local.owner) return `a peer holds version ${c.remote.version} of token ${c.start}, owned by this node, which only knows version ${c.local.version}: this node lost its allocation state; restore it before allocating`;
      return `a peer changed token ${c.start}, owned by this node, to owner ${c.remote.owner} at version ${c.remote.version}: this node was probably reclaimed while it was still alive; values in that range may be handed out twice`;
    case 'range-split':
      return `a peer holds token ${c.start} (owner ${c.remote.owner}) inside a range this node owns: someone else split this node's range`;
  }
}
