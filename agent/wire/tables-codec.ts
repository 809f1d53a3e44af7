// Wire codec for replicated-table traffic: gossip batches and the three
// anti-entropy messages. Every decoded field is checked with zod; the tables
// then apply their own rules (ownership, admission) on top.
import { z } from 'zod';
import type { WireEntry, Digest, SyncReply } from '../../controlplane/tables/index.ts';
import { decodePlain, encodePlain, tablesTypes, clusterSyncTypes } from './protos.ts';
import { FrameError } from './cluster-codec.ts';

export const MAX_TABLE_FRAME_BYTES = 16 * 1024 * 1024;
const MAX_ENTRIES = 200_000;

const bytes = z.custom<Uint8Array>((v) => v instanceof Uint8Array, 'expected bytes');
const nodeId = z.string().regex(/^[0-9a-f]{32}$/, 'node IDs are 32 lower-case hex characters');
const tableName = z.string().min(1).max(200);

const entrySchema = z.object({
  table: tableName,
  key: z.string().max(512),
  owner: nodeId,
  lamport: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
  deleted: z.boolean(),
  reapInMs: z.number().int().nonnegative(),
  value: bytes.refine((b) => b.length <= 64 * 1024, 'entry values are limited to 64 KiB'),
});
const batchSchema = z.object({ entries: z.array(entrySchema).max(MAX_ENTRIES) });
const digestSchema = z.object({
  tables: z.array(tableName).max(100_000),
  buckets: z.array(z.object({ table: tableName, owner: nodeId, count: z.number().int().nonnegative(), hash: z.string().regex(/^[0-9a-f]{16}$/) })).max(1_000_000),
});
const replySchema = z.object({
  entries: z.array(entrySchema).max(MAX_ENTRIES),
  buckets: z.array(z.object({ table: tableName, owner: nodeId })).max(1_000_000),
});
const syncPartSchema = z.object({ snapshot: bytes, digest: bytes.optional(), reply: bytes.optional() });

function decode<T>(schema: z.ZodType<T>, type: Parameters<typeof decodePlain>[0], data: Uint8Array, what: string): T {
  if (data.length > MAX_TABLE_FRAME_BYTES) throw new FrameError(`${what} of ${data.length} bytes exceeds ${MAX_TABLE_FRAME_BYTES}`);
  let plain: unknown;
  try {
    plain = normalise(decodePlain(type, data));
  } catch (error) {
    throw new FrameError(`${what} is not valid protobuf: ${(error as Error).message}`);
  }
  const parsed = schema.safeParse(plain);
  if (!parsed.success) throw new FrameError(`${what} rejected: ${z.prettifyError(parsed.error)}`);
  return parsed.data;
}

function normalise(value: unknown): unknown {
  if (value instanceof Uint8Array) return new Uint8Array(value);
  if (Array.isArray(value)) return value.map(normalise);
  if (value !== null && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, normalise(v)]));
  return value;
}

export const encodeEntryBatch = (entries: WireEntry[]): Uint8Array => encodePlain(tablesTypes.EntryBatch, { entries });
export const decodeEntryBatch = (data: Uint8Array): WireEntry[] => decode(batchSchema, tablesTypes.EntryBatch, data, 'table batch').entries;
export const encodeDigest = (digest: Digest): Uint8Array => encodePlain(tablesTypes.Digest, { ...digest });
export const decodeDigest = (data: Uint8Array): Digest => decode(digestSchema, tablesTypes.Digest, data, 'table digest');
export const encodeSyncReply = (reply: SyncReply): Uint8Array => encodePlain(tablesTypes.SyncReply, { ...reply });
export const decodeSyncReply = (data: Uint8Array): SyncReply => decode(replySchema, tablesTypes.SyncReply, data, 'sync reply');
export const encodeSyncFinish = (entries: WireEntry[]): Uint8Array => encodePlain(tablesTypes.SyncFinish, { entries });
export const decodeSyncFinish = (data: Uint8Array): WireEntry[] => decode(batchSchema, tablesTypes.SyncFinish, data, 'sync finish').entries;

export interface SyncPart {
  snapshot: Uint8Array;
  body: Uint8Array;
}

export const encodeSyncOpen = (part: SyncPart): Uint8Array => encodePlain(clusterSyncTypes.SyncOpen, { snapshot: part.snapshot, digest: part.body });
export const encodeSyncAnswer = (part: SyncPart): Uint8Array => encodePlain(clusterSyncTypes.SyncAnswer, { snapshot: part.snapshot, reply: part.body });

export function decodeSyncOpen(data: Uint8Array): SyncPart {
  const p = decode(syncPartSchema, clusterSyncTypes.SyncOpen, data, 'sync open');
  return { snapshot: p.snapshot, body: p.digest ?? new Uint8Array() };
}

export function decodeSyncAnswer(data: Uint8Array): SyncPart {
  const p = decode(syncPartSchema, clusterSyncTypes.SyncAnswer, data, 'sync answer');
  return { snapshot: p.snapshot, body: p.reply ?? new Uint8Array() };
}
