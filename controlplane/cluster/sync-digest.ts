// Digests for the periodic anti-entropy round (agent/cluster/state-sync.ts).
// A full round sends the whole roster summary and the whole liveness snapshot
// each way, ~280 bytes per member, every 30 s, although on a quiet cluster
// both sides already agree. A digest round sends one hash of each instead
// (memberlist's push-pull and Serf send full state; this keeps their idea,
// anti-entropy with a random peer, and pays per member only on difference):
// when either hash differs, the initiator follows with a full round.
// Pure: the hash is a function of the state, not of the order it was built in.
import { createHash } from 'node:crypto';
import { summaryOf, type MemberRecord } from './roster.ts';
import type { MemberView } from '../membership/index.ts';

/** Bytes of each digest on the wire: 128 bits, collisions out of reach by accident. */
export const SYNC_DIGEST_BYTES = 16;

export interface SyncDigests {
  /** Hash of every roster record's ordering fields (node, version, status, writer). */
  rosterDigest: Uint8Array;
  /** Hash of every liveness entry's (node, address, incarnation, state). */
  membershipDigest: Uint8Array;
}

/** The digests of a roster and a failure-detection view, as a digest round sends them. */
export function syncDigests(records: readonly MemberRecord[], members: readonly Pick<MemberView, 'id' | 'address' | 'incarnation' | 'state'>[]): SyncDigests {
  const roster = records.map(summaryOf).map((s): unknown[] => [s.nodeId, s.version, s.status, s.changedBy]);
  const liveness = members.map((m): unknown[] => [m.id, m.address, m.incarnation, m.state]);
  return { rosterDigest: digestOf(roster), membershipDigest: digestOf(liveness) };
}

/** True when both sides hold the same roster and the same liveness view: nothing to exchange. */
export function sameDigests(ours: SyncDigests, theirs: Partial<SyncDigests>): boolean {
  return equalBytes(ours.rosterDigest, theirs.rosterDigest) && equalBytes(ours.membershipDigest, theirs.membershipDigest);
}

/** Sorted by node ID, then JSON per tuple: unambiguous whatever the field contents. */
function digestOf(tuples: unknown[][]): Uint8Array {
  const hash = createHash('sha256');
  const sorted = [...tuples].sort((a, b) => (String(a[0]) < String(b[0]) ? -1 : String(a[0]) > String(b[0]) ? 1 : 0));
  for (const tuple of sorted) hash.update(JSON.stringify(tuple)).update('\n');
  return new Uint8Array(hash.digest().subarray(0, SYNC_DIGEST_BYTES));
}

/** Whether two digests are the same bytes (a missing one never is). */
export function equalBytes(a: Uint8Array, b: Uint8Array | undefined): boolean {
  return b !== undefined && a.length === b.length && a.every((byte, i) => byte === b[i]);
}
