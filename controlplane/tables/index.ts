// Public surface of the replicated tables.
export { LamportClock, MAX_LAMPORT, MAX_LAMPORT_JUMP, implausibleLamport } from './lamport.ts';
export { compareVersions, sameVersion, toWire, fromWire, malformation } from './entry.ts';
export type { Entry, WireEntry, Versioned } from './entry.ts';
export { visibleChange } from './change.ts';
export type { Change, ChangeOp } from './change.ts';
export { ChangeFeed, tablePrefix } from './feed.ts';
export type { ChangeListener, TableFilter } from './feed.ts';
export { ReplicatedTables } from './table.ts';
export { DEFAULT_REAP_MS, DEFAULT_CLUSTER_REAP_MS } from './tables-config.ts';
export type { TablesConfig } from './tables-config.ts';
export type { ApplyStatus, ApplyResult, BatchResult, LocalWrite, TableCounters } from './results.ts';
export { Coalescer } from './coalescer.ts';
export { makeDigest, sameBucket } from './digest.ts';
export type { Digest, BucketDigest } from './digest.ts';
export { diffAgainstDigest, completeSync, exchange } from './antientropy.ts';
export type { BucketRef, SyncReply, SyncCompletion, ExchangeResult } from './antientropy.ts';
export { signedFields } from './signing.ts';
export type { EntrySigner, EntryVerifier } from './signing.ts';
