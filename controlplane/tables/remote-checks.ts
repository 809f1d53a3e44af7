// Whether an entry received from another node may be merged at all. Checked
// before the merge, in order: well-formed, a plausible Lamport time, written
// by the node that published it (gossip), owned by an admitted member whose
// entries have not been forgotten, and signed by its owner when it would be
// applied. A refused entry changes nothing, not even the clock.

import { compareVersions, malformation } from './entry.ts';
import type { Entry, WireEntry } from './entry.ts';
import type { TableFilter } from './feed.ts';
import { implausibleLamport } from './lamport.ts';
import type { Refusal } from './results.ts';
import { signedFields } from './signing.ts';
import type { EntryVerifier } from './signing.ts';

/** How the entry arrived: from its owner's gossip, or relayed by a sync peer. */
export type RemotePath = 'gossip' | 'sync';

export interface Refused {
  status: Refusal;
  reason: string;
}

/** What the checks consult in the node's tables. */
export interface RemoteRules {
  isAdmitted(node: string): boolean;
  isForgotten(node: string): boolean;
  clusterScoped: TableFilter;
  verify: EntryVerifier | undefined;
  /** The stored version of a key. */
  current(table: string, key: string): Entry | undefined;
}

/** Why `wire`, received from `from`, is refused; undefined when it may be merged. */
export function refusalOf(rules: RemoteRules, from: string, wire: WireEntry, path: RemotePath, clockBefore: number): Refused | undefined {
  return originRefusal(rules, from, wire, path, clockBefore) ?? signatureRefusal(rules, wire, path);
}

function originRefusal(rules: RemoteRules, from: string, wire: WireEntry, path: RemotePath, clockBefore: number): Refused | undefined {
  const bad = malformation(wire);
  if (bad !== undefined) return { status: 'malformed', reason: bad };
  const ahead = implausibleLamport(wire.lamport, clockBefore);
  if (ahead !== undefined) return { status: 'implausible', reason: `${wire.table}/${wire.key} of ${wire.owner}: ${ahead}` };
  if (path === 'gossip' && wire.owner !== from) return { status: 'forged', reason: `${from} published ${wire.table}/${wire.key} as if it were ${wire.owner}` };
  if (!rules.isAdmitted(wire.owner)) return { status: 'unadmitted', reason: `owner ${wire.owner} of ${wire.table}/${wire.key} is not an admitted member` };
  if (rules.isForgotten(wire.owner) && !rules.clusterScoped(wire.table)) return { status: 'forgotten', reason: `owner ${wire.owner} of ${wire.table}/${wire.key} was reaped` };
  return undefined;
}

/**
 * Only a version that would be applied is verified: an older one is dropped
 * anyway, and the same version again was verified when it was stored (a
 * copy with another signature is refused, so it cannot even shorten the
 * stored tombstone's reap time). One verification per version per node.
 * Over gossip the owner is the publisher (originRefusal), and the transport
 * has checked the publisher's signature over the whole message with the same
 * key (gossipsub StrictSign), so the entry's own signature is only required
 * to be there: verifying it again would cost ~0.1 ms per entry on the
 * hottest path and prove nothing more. A member that gossips its own
 * entries with a bad signature only gets them refused when relayed.
 */
function signatureRefusal(rules: RemoteRules, wire: WireEntry, path: RemotePath): Refused | undefined {
  if (rules.verify === undefined) return undefined;
  const current = rules.current(wire.table, wire.key);
  const order = current === undefined ? 1 : compareVersions(wire, current);
  if (order < 0) return undefined;
  if (order === 0) {
    return current !== undefined && sameSignature(wire.signature, current.signature) ? undefined : { status: 'badSignature', reason: `a copy of ${wire.table}/${wire.key} with another signature` };
  }
  const signature = wire.signature;
  if (signature === undefined || signature.length === 0) return { status: 'badSignature', reason: `${wire.table}/${wire.key} of ${wire.owner} is not signed` };
  if (path === 'sync' && !rules.verify(wire.owner, signedFields(wire), signature)) return { status: 'badSignature', reason: `${wire.table}/${wire.key} is not signed by its owner ${wire.owner}` };
  return undefined;
}

function sameSignature(a: Uint8Array | undefined, b: Uint8Array | undefined): boolean {
  if (a === undefined || a.length === 0 || b === undefined || b.length === 0) return (a?.length ?? 0) === (b?.length ?? 0);
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}
