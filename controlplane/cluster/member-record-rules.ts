// Who may change a member record, decided without I/O. These rules used to
// live inside the libp2p class (agent/cluster/cluster-node.ts), where only the
// agent ran them; record-intake.ts now applies them to the roster for the
// agent and the simulator alike, after the certificate check (asynchronous
// in the agent, a stand-in in the simulator).
//   - gossip carries only what its sender wrote (changedBy = sender); sync
//     relays others' records, whose signatures are checked either way;
//   - a version far ahead of the one held is refused (roster.ts);
//   - every version is signed by a writer allowed to write it (record-signing.ts);
//   - nobody else may change our own record, except to revoke us: a foreign
//     or stale version of it is outvoted by a newer one of ours.
import { implausibleVersion, type MemberRecord } from './roster.ts';
import { recordSignatureProblem, type PeerVerifier } from './record-signing.ts';

export type RecordVerdict =
  | { kind: 'refuse'; problem: string }
  /** Someone else's record: merge it into the roster (the roster keeps the newer version). */
  | { kind: 'merge' }
  /** Our own record, revoked by another member: merge it and leave the cluster. */
  | { kind: 'revoked' }
  /** Our own record in a version we did not write: write ours again at `version`. */
  | { kind: 'outvote'; version: number }
  /** Our own record, nothing to do. */
  | { kind: 'ignore' };

export interface RecordContext {
  selfId: string;
  /** Our current record. */
  self: MemberRecord;
  /** The version of the record's subject the roster holds, if any. */
  held: number | undefined;
  /** Peer ID of an active member (the writer of an admission or removal must be one). */
  activePeerOf: (nodeId: string) => string | undefined;
  verify: PeerVerifier;
}

/** Why a record that came by gossip from `senderId` must be refused, or undefined. */
export function gossipWriterProblem(record: MemberRecord, senderId: string): string | undefined {
  return record.changedBy === senderId ? undefined : `a member record written by ${record.changedBy} came by gossip from ${senderId}, who may only gossip its own writes`;
}

export function judgeRecord(record: MemberRecord, context: RecordContext): RecordVerdict {
  const problem = implausibleVersion(record.version, context.held) ?? recordSignatureProblem(record, context.activePeerOf, context.verify);
  if (problem) return { kind: 'refuse', problem };
  if (record.nodeId !== context.selfId) return { kind: 'merge' };
  if (record.status === 'revoked') return { kind: 'revoked' };
  const current = context.self;
  if (record.version >= current.version && (record.status !== current.status || record.changedBy !== current.changedBy)) {
    return { kind: 'outvote', version: record.version + 1 };
  }
  return { kind: 'ignore' };
}

/**
 * Whether our own record must be written anew: it says something other than
 * what this agent runs with (a restart with a new advertise address, say),
 * was written by our sponsor, or is unsigned (an agent before record signatures).
 */
export function selfRecordStale(current: MemberRecord, selfId: string, fields: Partial<MemberRecord>): boolean {
  const differs = (Object.keys(fields) as Array<keyof MemberRecord>).some((k) => current[k] !== fields[k]);
  const unsigned = current.signature === undefined || current.signature.length === 0;
  return differs || unsigned || current.changedBy !== selfId;
}
