// A simulated node's roster: the agent's Roster, record intake and record
// rules (controlplane/cluster/record-intake.ts, member-record-rules.ts,
// record-signing.ts), the production functions, run on records of the
// agent's shape. Only the credentials are stand-ins, because the agent's are
// I/O-bound (ECDSA certificates, ed25519 node keys) and the simulator must
// stay deterministic and cheap:
//   - certificate: the bytes `weft-sim-certificate/1 <node ID> <peer ID>`;
//     the check refuses a record whose certificate is not the one for its
//     node and peer ID (the agent's RecordVerifier checks that binding on a
//     CA-signed certificate);
//   - signature: SHA-256 over the peer ID and the signed fields
//     (signedRecordFields). It tells which key a record claims to be signed
//     with, not that nobody else could have made it: the simulated nodes are
//     honest, and a test plays the forger by signing with the wrong peer ID.
// What is not modelled: the join token and its rotation, admission of new
// nodes (every node is in every roster from the start), and settings.
import { createHash } from 'node:crypto';
import { originProblem, takeRecord, type IntakeOutcome, type RecordOrigin } from '../cluster/record-intake.ts';
import { signedRecordFields, type PeerVerifier } from '../cluster/record-signing.ts';
import { Roster, type MemberRecord } from '../cluster/roster.ts';
import { equalBytes, syncDigests } from '../cluster/sync-digest.ts';

const encoder = new TextEncoder();

/** The simulator's stand-in for the peer ID a node's libp2p key gives it. */
export function standInPeerId(nodeId: string): string {
  return `sim-peer-${nodeId}`;
}

/** The stand-in certificate binding `nodeId` to `peerId`. */
export function standInCertificate(nodeId: string, peerId: string): Uint8Array {
  return encoder.encode(`weft-sim-certificate/1 ${nodeId} ${peerId}`);
}

/** The stand-in certificate check: what the agent's RecordVerifier would refuse, in its words. */
export function standInCertificateProblem(record: MemberRecord): string | undefined {
  return equalBytes(standInCertificate(record.nodeId, record.peerId), record.certificate) ? undefined : `certificate of ${record.nodeId} binds a different node or peer ID`;
}

/** The stand-in signature of `payload` by the key behind `peerId`. */
export function standInSign(peerId: string, payload: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(peerId).update('\0').update(payload).digest());
}

export const standInVerify: PeerVerifier = (peerId, payload, signature) => equalBytes(standInSign(peerId, payload), signature);

/** `record` as written by the holder of `peerId` (OwnerKeys.signRecord with the stand-in key). */
export function signRecordAs(peerId: string, record: MemberRecord): MemberRecord {
  const unsigned: MemberRecord = { ...record };
  delete unsigned.signature;
  return { ...unsigned, signature: standInSign(peerId, signedRecordFields(unsigned)) };
}

/**
 * A node's record as a settled cluster holds it: written (version 2) by the
 * node itself, as the agent's ensureSelf rewrites the sponsor's version 1.
 */
export function settledRecord(nodeId: string, address: string): MemberRecord {
  const peerId = standInPeerId(nodeId);
  return signRecordAs(peerId, {
    nodeId, name: nodeId, peerId, address, gossipPort: 7946, admissionPort: 2377,
    certificate: standInCertificate(nodeId, peerId), version: 2, status: 'active', changedBy: nodeId,
  });
}

/** What one batch of received records did, for the host to carry out. */
export interface RecordsTaken {
  /** Our own record, written again to outvote a version we did not write: publish it. */
  publish: MemberRecord[];
  /** Others' records merged into the roster. */
  merged: MemberRecord[];
  /** Our own record came back revoked: the node leaves the cluster. */
  revoked: boolean;
  /** Records refused, and why (the agent logs these). */
  refused: string[];
}

export class SimRoster {
  readonly roster = new Roster();
  readonly selfId: string;
  /** The roster's digest (sync-digest.ts), kept until the roster changes: at N = 1000 hashing it costs ~1 ms per round. */
  #digest: Uint8Array | undefined;

  constructor(selfId: string, records: Iterable<MemberRecord>) {
    this.selfId = selfId;
    for (const record of records) this.roster.merge(record);
    if (this.roster.get(selfId) === undefined) throw new Error(`sim roster: no record of ${selfId}`);
    this.roster.onChange(() => {
      this.#digest = undefined;
    });
  }

  /** The hash a digest round sends for the roster (the same bytes as syncDigests' rosterDigest). */
  digest(): Uint8Array {
    this.#digest ??= syncDigests(this.roster.all(), []).rosterDigest;
    return this.#digest;
  }

  /** Is `nodeId` an active member (may it connect, speak SWIM and publish)? */
  isActive(nodeId: string): boolean {
    return this.roster.get(nodeId)?.status === 'active';
  }

  /** Records from an active member, as ClusterNode.ingest takes them. */
  take(records: readonly MemberRecord[], origin: RecordOrigin): RecordsTaken {
    const taken: RecordsTaken = { publish: [], merged: [], revoked: false, refused: [] };
    if (!this.isActive(origin.senderId)) return taken;
    for (const record of records) {
      const problem = originProblem(record, origin);
      const outcome: IntakeOutcome = problem !== undefined
        ? { kind: 'refused', problem }
        : takeRecord(this.roster, record, { selfId: this.selfId, verify: standInVerify, certificateProblem: standInCertificateProblem(record) });
      switch (outcome.kind) {
        case 'refused':
          taken.refused.push(outcome.problem);
          break;
        case 'outvote':
          taken.publish.push(this.writeSelf({ version: outcome.version }));
          break;
        case 'revoked':
          taken.revoked = true;
          break;
        case 'merged':
          taken.merged.push(outcome.record);
          break;
        case 'unchanged':
          break;
      }
    }
    return taken;
  }

  /** Our own record changed and signed by us (ClusterNode's #updateSelf); the host publishes it. */
  writeSelf(change: Partial<MemberRecord>): MemberRecord {
    const current = this.roster.get(this.selfId) as MemberRecord;
    const next = signRecordAs(current.peerId, { ...current, ...change, version: change.version ?? current.version + 1, changedBy: this.selfId });
    this.roster.merge(next);
    return next;
  }

  /** `weft node rm` on this node (ClusterNode.revoke, without the token rotation); the host publishes it. */
  revoke(nodeId: string): MemberRecord {
    const target = this.roster.get(nodeId);
    if (target === undefined || nodeId === this.selfId) throw new Error(`sim roster: cannot revoke ${nodeId}`);
    const self = this.roster.get(this.selfId) as MemberRecord;
    const revoked = signRecordAs(self.peerId, { ...target, status: 'revoked', version: target.version + 1, changedBy: this.selfId });
    this.roster.merge(revoked);
    return revoked;
  }
}
