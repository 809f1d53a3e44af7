// How one node's replicated tables are set up: its identity, how long
// tombstones live, who may own entries, which tables outlive their writers,
// and how entries are signed and verified.

import type { TableFilter } from './feed.ts';
import type { EntrySigner, EntryVerifier } from './signing.ts';

/**
 * 30 minutes, networkdb's reapEntryInterval. A tombstone must outlive the
 * longest partition we expect to heal through anti-entropy: a node that missed
 * the delete and still holds the live version would otherwise hand that
 * version back to peers that already dropped the tombstone. The owner would
 * then see it as a self conflict and delete it again, but consumers would see
 * the entry flicker.
 */
export const DEFAULT_REAP_MS = 30 * 60 * 1000;

/**
 * 7 days for tombstones of cluster-scoped tables (networks, services). Their
 * entries have no owner with local truth to settle a resurrected key (an
 * endpoint's owner checks its sandboxes; nobody can check whether a service
 * should exist), so the delete itself must outlive the absence of any peer
 * that may still hold the live version. These tables change rarely and a
 * tombstone is a few hundred bytes, so a week of deletes costs little.
 */
export const DEFAULT_CLUSTER_REAP_MS = 7 * 24 * 60 * 60 * 1000;

export interface TablesConfig {
  self: string;
  /** Tombstone lifetime of owner-bound tables (endpoints, allocations, nodes). */
  reapMs?: number;
  /** Tombstone lifetime of cluster-scoped tables; never shorter than reapMs. */
  clusterReapMs?: number;
  /** Restored Lamport time after a restart (see LamportClock). */
  initialLamport?: number;
  /**
   * Roster check on owners (e.g. "has an active, unrevoked certificate").
   * Entries owned by anyone else are refused on every path. Default: all.
   */
  isAdmitted?: (node: string) => boolean;
  /**
   * Tables whose entries describe cluster objects that outlive their writer
   * (networks, services): they are never hidden or forgotten with their
   * owner. Default: none, every entry is bound to its owner's liveness.
   */
  clusterScoped?: TableFilter;
  /**
   * Signs this node's writes once, when they are made; the signature travels
   * with the entry through gossip, sync and relays. Default: unsigned.
   */
  sign?: EntrySigner;
  /**
   * Checks an owner's signature on every new version received, whatever the
   * path (gossip, sync, relay, reload). Default: none (the simulator, which
   * has no hostile members).
   */
  verify?: EntryVerifier;
}

/** The tombstone lifetimes of a config, checked: [owner-bound, cluster-scoped]. */
export function reapTimes(config: TablesConfig): { reapMs: number; clusterReapMs: number } {
  const reapMs = positiveMs('reapMs', config.reapMs ?? DEFAULT_REAP_MS);
  return { reapMs, clusterReapMs: Math.max(reapMs, positiveMs('clusterReapMs', config.clusterReapMs ?? DEFAULT_CLUSTER_REAP_MS)) };
}

function positiveMs(name: string, value: number): number {
  if (!Number.isFinite(value) || value <= 0) throw new RangeError(`${name} must be a positive number of ms, got ${value}`);
  return value;
}
