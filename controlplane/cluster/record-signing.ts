// Who may write which version of a member record, and what they sign.
// The certificate in a record proves who the node is, not who wrote the
// record's status, address or version: without a signature any member could
// relay a record saying another member left, or moved. So every version is
// signed by its writer (changedBy) with its node key, over every field:
//   active, left   the member itself (it states where it is and that it goes);
//                  the one exception is the first version (1, active), which
//                  the member that admitted it writes
//   revoked        any active member: `weft node rm` works on every member
// Signing and verifying are injected (agent/cluster/owner-keys.ts) so this
// file stays pure.
import { canonicalBytes } from '../security/canonical.ts';
import type { MemberRecord } from './roster.ts';

/** True when `signature` is the signature of `payload` by the key behind `peerId`. */
export type PeerVerifier = (peerId: string, payload: Uint8Array, signature: Uint8Array) => boolean;

export function signedRecordFields(r: MemberRecord): Uint8Array {
  return canonicalBytes('weft/member-record/1', [r.nodeId, r.name, r.peerId, r.address, r.gossipPort, r.admissionPort, r.certificate, r.version, r.status, r.changedBy]);
}

/**
 * Why this record is not signed by a writer allowed to write it, or
 * undefined when it is. `activePeerOf`: the peer ID of an active member (the
 * writer of an admission or a removal must be one); the subject's own key is
 * the record's peer ID, which the certificate binds (check that first).
 */
export function recordSignatureProblem(record: MemberRecord, activePeerOf: (nodeId: string) => string | undefined, verify: PeerVerifier): string | undefined {
  const signature = record.signature;
  if (signature === undefined || signature.length === 0) return `version ${record.version} of the record of ${record.nodeId} is not signed`;
  const bySubject = record.changedBy === record.nodeId;
  const admission = record.status === 'active' && record.version === 1;
  if (bySubject && record.status === 'revoked') return `${record.nodeId} cannot remove itself`;
  if (!bySubject && record.status !== 'revoked' && !admission) {
    return `only ${record.nodeId} itself may write its record as ${record.status}; version ${record.version} is by ${record.changedBy}`;
  }
  const peerId = bySubject ? record.peerId : activePeerOf(record.changedBy);
  if (peerId === undefined) return `${record.changedBy}, the writer of the record of ${record.nodeId}, is not an active member`;
  if (!verify(peerId, signedRecordFields(record), signature)) return `the record of ${record.nodeId} is not signed by its writer ${record.changedBy}`;
  return undefined;
}
