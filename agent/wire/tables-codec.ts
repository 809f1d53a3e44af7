// Wire codec for replicated-table traffic: gossip batches and the three
// anti-entropy messages. Every decoded field is checked with zod; the tables
// then apply their own rules (ownership, admission, bounds) on top.
// Entries are checked one by one: a bad entry is dropped and counted, and the
// rest of its batch still goes through (one member's bad entry must never
// stop everyone else's replication).
import { z } from 'zod';
import type { WireEntry, Digest, SyncReply } from '../../controlplane/tables/index.ts';
import { encodePlain, tablesTypes, clusterSyncTypes } from './protos.ts';
import { checkedDecode } from './checked-decode.ts';

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
  // Absent (empty) only from agents before owner signatures; the tables refuse those.
  signature: bytes.refine((b) => b.length <= 128, 'signatures are at most 128 bytes').optional(),
});
const looseEntries = z.array(z.unknown()).max(MAX_ENTRIES);
const batchSchema = z.object({ entries: looseEntries });
const digestSchema = z.object({
  tables: z.array(tableName).max(100_000),
  buckets: z.array(z.object({ table: tableName, owner: nodeId, count: z.number().int().nonnegative(), hash: z.string().regex(/^[0-9a-f]{16}$/) })).max(1_000_000),
});
const replySchema = z.object({
  entries: looseEntries,
  buckets: z.array(z.object({ table: tableName, owner: nodeId })).max(1_000_000),
});
const syncPartSchema = z.object({ snapshot: bytes, digest: bytes.optional(), reply: bytes.optional() });

/** Decoded entries, and how many were dropped for failing the entry schema. */
export interface DecodedEntries {
  entries: WireEntry[];
  dropped: number;
}

function checkEntries(raw: readonly unknown[]): DecodedEntries {
  const entries: WireEntry[] = [];
  for (const item of raw) {
    const parsed = entrySchema.safeParse(item);
    if (parsed.success) entries.push(parsed.data);
  }
  return { entries, dropped: raw.length - entries.length };
}

export const encodeEntryBatch = (entries: WireEntry[]): Uint8Array => encodePlain(tablesTypes.EntryBatch, { entries });
export const decodeEntryBatch = (data: Uint8Array): DecodedEntries => checkEntries(checkedDecode(batchSchema, tablesTypes.EntryBatch, data, 'table batch', MAX_TABLE_FRAME_BYTES).entries);
export const encodeDigest = (digest: Digest): Uint8Array => encodePlain(tablesTypes.Digest, { ...digest });
export const decodeDigest = (data: Uint8Array): Digest => checkedDecode(digestSchema, tablesTypes.Digest, data, 'table digest', MAX_TABLE_FRAME_BYTES);
export const encodeSyncReply = (reply: SyncReply): Uint8Array => encodePlain(tablesTypes.SyncReply, { ...reply });
export function decodeSyncReply(data: Uint8Array): SyncReply & { dropped: number } {
  const reply = checkedDecode(replySchema, tablesTypes.SyncReply, data, 'sync reply', MAX_TABLE_FRAME_BYTES);
  const { entries, dropped } = checkEntries(reply.entries);
  return { entries, buckets: reply.buckets, dropped };
}
export const encodeSyncFinish = (entries: WireEntry[]): Uint8Array => encodePlain(tablesTypes.SyncFinish, { entries });
export const decodeSyncFinish = (data: Uint8Array): DecodedEntries => checkEntries(checkedDecode(batchSchema, tablesTypes.SyncFinish, data, 'sync finish', MAX_TABLE_FRAME_BYTES).entries);

export interface SyncPart {
  snapshot: Uint8Array;
  body: Uint8Array;
}

export const encodeSyncOpen = (part: SyncPart): Uint8Array => encodePlain(clusterSyncTypes.SyncOpen, { snapshot: part.snapshot, digest: part.body });
export const encodeSyncAnswer = (part: SyncPart): Uint8Array => encodePlain(clusterSyncTypes.SyncAnswer, { snapshot: part.snapshot, reply: part.body });

export function decodeSyncOpen(data: Uint8Array): SyncPart {
  const p = checkedDecode(syncPartSchema, clusterSyncTypes.SyncOpen, data, 'sync open', MAX_TABLE_FRAME_BYTES);
  return { snapshot: p.snapshot, body: p.digest ?? new Uint8Array() };
}

export function decodeSyncAnswer(data: Uint8Array): SyncPart {
  const p = checkedDecode(syncPartSchema, clusterSyncTypes.SyncAnswer, data, 'sync answer', MAX_TABLE_FRAME_BYTES);
  return { snapshot: p.snapshot, body: p.reply ?? new Uint8Array() };
}
