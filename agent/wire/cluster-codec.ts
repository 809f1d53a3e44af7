// Wire codec for cluster state (gossip envelopes and sync snapshots). Frames
// come from other hosts, so after protobuf decoding every field is checked
// with zod; a bad frame is rejected as a whole with a reason, never half-applied.
import { z } from 'zod';
import { isIPv4 } from 'node:net';
import type { MemberRecord, MemberSummary } from '../../controlplane/cluster/roster.ts';
import type { TokenRecord } from '../../controlplane/cluster/token-record.ts';
import { EnvelopeType, SnapshotType, SyncCloseType, encodePlain } from './protos.ts';
import { checkedDecode, FrameError } from './checked-decode.ts';
import { SYNC_DIGEST_BYTES } from '../../controlplane/cluster/sync-digest.ts';

export { FrameError };

/** Upper bound on a frame: far above any real roster, low enough to refuse memory abuse. */
export const MAX_FRAME_BYTES = 4 * 1024 * 1024;

const bytes = z.custom<Uint8Array>((v) => v instanceof Uint8Array, 'expected bytes');
const nodeId = z.string().regex(/^[0-9a-f]{32}$/, 'node IDs are 32 lower-case hex characters');
const port = z.number().int().min(1).max(65535);

const memberRecordSchema = z.object({
  nodeId,
  name: z.string().min(1).max(64),
  peerId: z.string().min(1).max(128),
  address: z.string().refine((a) => isIPv4(a), 'address must be an IPv4 address'),
  gossipPort: port,
  admissionPort: port,
  certificate: bytes.refine((b) => b.length > 0 && b.length < 8192, 'certificate must be 1..8191 bytes'),
  version: z.number().int().nonnegative(),
  status: z.enum(['active', 'left', 'revoked']),
  changedBy: nodeId,
  signature: bytes.refine((b) => b.length <= 128, 'signatures are at most 128 bytes').optional(),
}).transform(({ signature, ...record }) => (signature !== undefined && signature.length > 0 ? { ...record, signature } : record));

const tokenRecordSchema = z.object({
  secret: bytes.refine((b) => b.length === 32, 'token secret must be 32 bytes'),
  version: z.number().int().nonnegative(),
  changedBy: nodeId,
});

const summarySchema = z.object({
  nodeId,
  version: z.number().int().nonnegative(),
  status: z.enum(['active', 'left', 'revoked']),
  changedBy: nodeId,
});

const snapshotSchema = z.object({
  summary: z.array(summarySchema).max(100_000),
  members: z.array(memberRecordSchema).max(100_000),
  token: tokenRecordSchema.nullable().optional(),
  settings: z.object({ defaultAddrPool: z.string().max(64) }).nullable().optional(),
  membership: bytes.optional(),
  // Absent (empty) in a full round; exactly SYNC_DIGEST_BYTES in a digest round.
  rosterDigest: bytes.refine((b) => b.length === 0 || b.length === SYNC_DIGEST_BYTES, `roster digest must be ${SYNC_DIGEST_BYTES} bytes`).optional(),
  membershipDigest: bytes.refine((b) => b.length === 0 || b.length === SYNC_DIGEST_BYTES, `membership digest must be ${SYNC_DIGEST_BYTES} bytes`).optional(),
});

const envelopeSchema = z.object({
  members: z.array(memberRecordSchema).max(100_000),
  token: tokenRecordSchema.nullable().optional(),
});

export interface ClusterSettings {
  defaultAddrPool: string;
}

export interface Snapshot {
  members: MemberRecord[];
  token?: TokenRecord | undefined;
  settings?: ClusterSettings | undefined;
  /** Encoded weft.swim.Snapshot; empty when the sender has none to share (on disk, say). */
  membership?: Uint8Array | undefined;
  /** In a sync: the sender's whole roster, summarised (members then holds only what differs). */
  summary?: MemberSummary[] | undefined;
  /** In a digest round (sync-digest.ts): hashes standing in for `summary` and `membership`. */
  rosterDigest?: Uint8Array | undefined;
  membershipDigest?: Uint8Array | undefined;
}

/** An opening of a digest round: hashes, no roster summary (a full round always summarises a non-empty roster). */
export function isDigestOnly(snapshot: Snapshot): boolean {
  return snapshot.rosterDigest !== undefined && snapshot.summary === undefined;
}

export interface Envelope {
  members: MemberRecord[];
  token?: TokenRecord | undefined;
}

export function encodeSnapshot(snapshot: Snapshot): Uint8Array {
  return encodePlain(SnapshotType, { ...snapshot });
}

export function decodeSnapshot(data: Uint8Array): Snapshot {
  const s = checkedDecode(snapshotSchema, SnapshotType, data, 'cluster snapshot', MAX_FRAME_BYTES);
  return {
    members: s.members,
    token: s.token ?? undefined,
    settings: s.settings ?? undefined,
    membership: s.membership?.length ? s.membership : undefined,
    summary: s.summary.length ? s.summary : undefined,
    rosterDigest: s.rosterDigest?.length ? s.rosterDigest : undefined,
    membershipDigest: s.membershipDigest?.length ? s.membershipDigest : undefined,
  };
}

const syncCloseSchema = z.object({ finish: bytes, members: z.array(memberRecordSchema).max(100_000) });

export interface SyncClose {
  finish: Uint8Array;
  members: MemberRecord[];
}

export function encodeSyncClose(close: SyncClose): Uint8Array {
  return encodePlain(SyncCloseType, { ...close });
}

export function decodeSyncClose(data: Uint8Array): SyncClose {
  return checkedDecode(syncCloseSchema, SyncCloseType, data, 'sync close', MAX_FRAME_BYTES);
}

export function encodeEnvelope(envelope: Envelope): Uint8Array {
  return encodePlain(EnvelopeType, { ...envelope });
}

export function decodeEnvelope(data: Uint8Array): Envelope {
  const e = checkedDecode(envelopeSchema, EnvelopeType, data, 'gossip envelope', MAX_FRAME_BYTES);
  return { members: e.members, token: e.token ?? undefined };
}
