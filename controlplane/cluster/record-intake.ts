// The roster's intake of member records received from a peer, without I/O:
// which records may be taken (the rules of member-record-rules.ts, judged
// against what the roster holds) and what taking one changes in the roster.
// The agent (agent/cluster/cluster-node.ts) and the simulator
// (controlplane/sim/tables-node.ts) both run it; they differ only in what
// comes before (the certificate check: asynchronous ECDSA in the agent, a
// documented stand-in in the simulator) and in how they carry out the
// outcome (sign and publish our own record, dial or hang up, leave).
import { gossipWriterProblem, judgeRecord } from './member-record-rules.ts';
import type { PeerVerifier } from './record-signing.ts';
import type { MemberRecord, Roster } from './roster.ts';

/** How a batch of records reached us: gossip from its publisher, or a sync with a peer. */
export interface RecordOrigin {
  kind: 'gossip' | 'sync';
  /** The node ID of the active member that sent the batch. */
  senderId: string;
}

export type IntakeOutcome =
  | { kind: 'refused'; problem: string }
  /** Nothing changed: our own record as we hold it, or an older version of another's. */
  | { kind: 'unchanged' }
  /** Our own record in a version we did not write: write ours again at `version` and publish it. */
  | { kind: 'outvote'; version: number }
  /** Our own record, revoked by another member: merged; this node must leave the cluster. */
  | { kind: 'revoked' }
  /** Another member's record, merged. */
  | { kind: 'merged'; outcome: 'added' | 'updated'; record: MemberRecord };

export interface IntakeContext {
  selfId: string;
  /** Whether `signature` is the signature of `payload` by the key behind a peer ID. */
  verify: PeerVerifier;
  /** What the certificate check found wrong with the record (run before, by the host). */
  certificateProblem?: string | undefined;
}

/**
 * Why a record must be refused because of the way it came, before any
 * certificate check: gossip carries only what its sender wrote.
 */
export function originProblem(record: MemberRecord, origin: RecordOrigin): string | undefined {
  return origin.kind === 'gossip' ? gossipWriterProblem(record, origin.senderId) : undefined;
}

/** Judges a record (member-record-rules.ts) against the roster and merges what the verdict allows. */
export function takeRecord(roster: Roster, record: MemberRecord, context: IntakeContext): IntakeOutcome {
  if (context.certificateProblem !== undefined) return { kind: 'refused', problem: context.certificateProblem };
  const self = roster.get(context.selfId);
  if (self === undefined) throw new Error('own member record missing from the roster');
  const verdict = judgeRecord(record, {
    selfId: context.selfId,
    self,
    held: roster.get(record.nodeId)?.version,
    activePeerOf: (nodeId) => {
      const writer = roster.get(nodeId);
      return writer?.status === 'active' ? writer.peerId : undefined;
    },
    verify: context.verify,
  });
  switch (verdict.kind) {
    case 'refuse':
      return { kind: 'refused', problem: verdict.problem };
    case 'ignore':
      return { kind: 'unchanged' };
    case 'outvote':
      return verdict;
    case 'revoked':
      roster.merge(record);
      return verdict;
    case 'merge': {
      const outcome = roster.merge(record);
      return outcome === 'ignored' ? { kind: 'unchanged' } : { kind: 'merged', outcome, record };
    }
  }
}
