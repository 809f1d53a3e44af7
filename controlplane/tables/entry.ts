// Table entries: the local form (Entry) and the wire form (WireEntry), the
// total order that decides which version of a key wins, and validation of
// what arrives from the network.

import { compareBytes, equalBytes } from './bytes.ts';

/**
 * One version of one key, as held locally. `reapAt` is only set on
 * tombstones and is a deadline on this node's own monotonic clock, which is
 * why it never goes on the wire as is (see WireEntry.reapInMs).
 */
export interface Entry {
  table: string;
  key: string;
  owner: string;
  lamport: number;
  deleted: boolean;
  reapAt?: number;
  value: Uint8Array;
  /** The owner's signature over signedFields() (signing.ts); absent where nobody signs (simulator). */
  signature?: Uint8Array;
}

/**
 * The wire form (proto/tables.proto `weft.tables.Entry`). Values are opaque
 * bytes so that every table can carry its own protobuf message. A tombstone
 * carries the time it has left before holders drop it (networkdb's residual
 * reap time): hosts do not share a clock, and a residual keeps a tombstone
 * that travels through anti-entropy from living forever by being re-armed on
 * every hop.
 */
export interface WireEntry {
  table: string;
  key: string;
  owner: string;
  lamport: number;
  deleted: boolean;
  reapInMs: number;
  value: Uint8Array;
  signature?: Uint8Array;
}

/** The fields that identify a version; both Entry and WireEntry have them. */
export type Versioned = Pick<Entry, 'table' | 'key' | 'owner' | 'lamport' | 'deleted' | 'value'>;

/**
 * Positive when `a` is the newer version. Last writer wins by
 * (lamport, owner); the remaining fields only break ties that a correct
 * owner never produces (it never reuses a Lamport time), but a node that
 * restarted without its clock can. Making the order total over every field
 * keeps merge commutative even then.
 */
export function compareVersions(a: Versioned, b: Versioned): number {
  if (a.lamport !== b.lamport) return a.lamport - b.lamport;
  if (a.owner !== b.owner) return a.owner < b.owner ? -1 : 1;
  if (a.deleted !== b.deleted) return a.deleted ? 1 : -1;
  return compareBytes(a.value, b.value);
}

export function sameVersion(a: Versioned, b: Versioned): boolean {
  return a.lamport === b.lamport && a.owner === b.owner && a.deleted === b.deleted && equalBytes(a.value, b.value);
}

/** Why a received entry is malformed, or undefined when it is well formed. */
export function malformation(w: WireEntry): string | undefined {
  if (typeof w.table !== 'string' || w.table === '') return 'entry without a table name';
  if (typeof w.key !== 'string') return `entry in ${w.table} without a key`;
  if (typeof w.owner !== 'string' || w.owner === '') return `entry ${w.table}/${w.key} without an owner`;
  if (!Number.isSafeInteger(w.lamport) || w.lamport < 0) return `entry ${w.table}/${w.key} has a bad lamport time ${String(w.lamport)}`;
  if (typeof w.deleted !== 'boolean') return `entry ${w.table}/${w.key} has a bad deleted flag`;
  if (!(w.value instanceof Uint8Array)) return `entry ${w.table}/${w.key} has a value that is not bytes`;
  if (!Number.isFinite(w.reapInMs) || w.reapInMs < 0) return `entry ${w.table}/${w.key} has a bad reap time ${String(w.reapInMs)}`;
  if (w.signature !== undefined && !(w.signature instanceof Uint8Array)) return `entry ${w.table}/${w.key} has a signature that is not bytes`;
  return undefined;
}

export function toWire(entry: Entry, now: number): WireEntry {
  const reapInMs = entry.deleted && entry.reapAt !== undefined ? Math.max(0, entry.reapAt - now) : 0;
  const wire: WireEntry = { table: entry.table, key: entry.key, owner: entry.owner, lamport: entry.lamport, deleted: entry.deleted, reapInMs, value: entry.value };
  if (entry.signature !== undefined) wire.signature = entry.signature;
  return wire;
}

/**
 * Converts a received entry to local form. The residual is capped at this
 * node's own reap time so that a peer cannot pin a tombstone here forever.
 */
export function fromWire(w: WireEntry, now: number, reapMs: number): Entry {
  const entry: Entry = { table: w.table, key: w.key, owner: w.owner, lamport: w.lamport, deleted: w.deleted, value: w.value };
  if (w.deleted) entry.reapAt = now + Math.min(w.reapInMs, reapMs);
  if (w.signature !== undefined && w.signature.length > 0) entry.signature = w.signature;
  return entry;
}
