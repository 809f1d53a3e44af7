// What an owner signs for one version of a key. Signing and verifying are
// injected (the agent uses the node's ed25519 libp2p key, agent/cluster/
// owner-keys.ts; the simulator signs nothing), so this file stays pure.
//
// The signature covers every field that decides the version and its content:
// table, key, owner, lamport, deleted, value. The tombstone residual
// (reapInMs) is not covered: it shrinks on every hop, and a receiver caps it
// at its own reap time anyway.

import { canonicalBytes } from '../security/canonical.ts';
import type { Versioned } from './entry.ts';

export type EntrySigner = (payload: Uint8Array) => Uint8Array;
/** True when `signature` is `owner`'s signature of `payload`. */
export type EntryVerifier = (owner: string, payload: Uint8Array, signature: Uint8Array) => boolean;

export function signedFields(entry: Versioned): Uint8Array {
  return canonicalBytes('weft/table-entry/1', [entry.table, entry.key, entry.owner, entry.lamport, entry.deleted, entry.value]);
}
