// The replicated tables of one node: named tables of last-writer-wins
// entries, the liveness view that hides dead owners, and the change stream
// consumers apply. Pure: every call takes `now` (ms on the caller's
// monotonic clock) and returns what changed; nothing here sends or waits.
//
// State is a join semi-lattice: for each (table, key) the version that is
// greatest under compareVersions() wins, so applying any set of entries in
// any order, any number of times, gives the same state.

import { BucketIndex } from './bucket.ts';
import type { Bucket } from './bucket.ts';
import { visibleChange } from './change.ts';
import type { Change } from './change.ts';
import { compareVersions, fromWire, malformation, toWire } from './entry.ts';
import type { Entry, WireEntry } from './entry.ts';
import { ChangeFeed } from './feed.ts';
import type { ChangeListener, TableFilter } from './feed.ts';
import { fingerprint } from './hash.ts';
import type { Fingerprint } from './hash.ts';
import { LamportClock, implausibleLamport } from './lamport.ts';
import { NodeLiveness } from './liveness.ts';
import { REFUSAL_COUNTER } from './results.ts';
import { signedFields } from './signing.ts';
import type { EntrySigner, EntryVerifier } from './signing.ts';
import type { ApplyResult, BatchResult, LocalWrite, Refusal, TableCounters } from './results.ts';

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

interface Stored {
  entry: Entry;
  fp: Fingerprint;
}

type MergeOutcome = { status: 'applied' | 'stale'; change: Change | undefined };

export class ReplicatedTables {
  readonly self: string;
  readonly reapMs: number;
  readonly clusterReapMs: number;
  readonly #clock: LamportClock;
  readonly #isAdmitted: (node: string) => boolean;
  readonly #clusterScoped: TableFilter;
  readonly #sign: EntrySigner | undefined;
  readonly #verify: EntryVerifier | undefined;
  readonly #tables = new Map<string, Map<string, Stored>>();
  readonly #buckets = new BucketIndex();
  readonly #tombstones = new Set<Stored>();
  readonly #liveness = new NodeLiveness();
  readonly #feed = new ChangeFeed();
  readonly #counters: TableCounters = { applied: 0, stale: 0, forgeries: 0, unadmitted: 0, forgotten: 0, malformed: 0, relayed: 0, selfConflicts: 0, implausible: 0, badSignatures: 0 };

  constructor(config: TablesConfig) {
    if (config.self === '') throw new Error('tables need the node ID of this node');
    const reapMs = positiveMs('reapMs', config.reapMs ?? DEFAULT_REAP_MS);
    this.self = config.self;
    this.reapMs = reapMs;
    this.clusterReapMs = Math.max(reapMs, positiveMs('clusterReapMs', config.clusterReapMs ?? DEFAULT_CLUSTER_REAP_MS));
    this.#clock = new LamportClock(config.initialLamport ?? 0);
    this.#isAdmitted = config.isAdmitted ?? (() => true);
    this.#clusterScoped = config.clusterScoped ?? (() => false);
    this.#sign = config.sign;
    this.#verify = config.verify;
  }

  /** How long a tombstone of `table` is kept before reap() drops it. */
  reapMsOf(table: string): number {
    return this.#clusterScoped(table) ? this.clusterReapMs : this.reapMs;
  }

  get lamport(): number {
    return this.#clock.time;
  }

  get counters(): Readonly<TableCounters> {
    return { ...this.#counters };
  }

  // ---- local writes -------------------------------------------------------

  set(now: number, table: string, key: string, value: Uint8Array): LocalWrite {
    const entry: Entry = { table, key, owner: this.self, lamport: this.#clock.tick(), deleted: false, value };
    return this.#localWrite(now, entry);
  }

  /** Tombstones a visible or hidden key; undefined when there is nothing to delete. */
  delete(now: number, table: string, key: string): LocalWrite | undefined {
    const current = this.#tables.get(table)?.get(key);
    if (current === undefined || current.entry.deleted) return undefined;
    const entry: Entry = { table, key, owner: this.self, lamport: this.#clock.tick(), deleted: true, reapAt: now + this.reapMsOf(table), value: new Uint8Array(0) };
    return this.#localWrite(now, entry);
  }

  #localWrite(now: number, entry: Entry): LocalWrite {
    if (this.#sign !== undefined) entry.signature = this.#sign(signedFields(entry));
    const { change } = this.#merge(entry);
    this.#counters.applied += 1;
    return { entry: toWire(entry, now), changes: this.#publish(change === undefined ? [] : [change]) };
  }

  // ---- remote writes ------------------------------------------------------

  /**
   * An entry received over gossip from `fromNode` (the authenticated
   * publisher). Only the owner publishes its entries, so an entry whose owner
   * is someone else is a forgery and is refused.
   */
  applyRemote(now: number, fromNode: string, wire: WireEntry): ApplyResult {
    const result = this.#applyOne(now, fromNode, wire, 'gossip', this.#clock.time);
    return { ...result, changes: this.#publish(result.changes) };
  }

  applyRemoteBatch(now: number, fromNode: string, entries: readonly WireEntry[]): BatchResult {
    return this.#applyMany(now, fromNode, entries, 'gossip');
  }

  /**
   * Entries relayed by a sync peer (anti-entropy), which legitimately carries
   * other owners' entries. Integrity rests on the transport: `peer` is an
   * authenticated, admitted member (certificate-bound libp2p peer ID),
   * owners must pass `isAdmitted`, and with a verifier configured every new
   * version must carry its owner's signature, so a peer cannot relay a
   * version that the owner did not write.
   */
  applySynced(now: number, peer: string, entries: readonly WireEntry[]): BatchResult {
    return this.#applyMany(now, peer, entries, 'sync');
  }

  #applyMany(now: number, from: string, entries: readonly WireEntry[], path: 'gossip' | 'sync'): BatchResult {
    const result: BatchResult = { changes: [], applied: 0, stale: 0, refused: 0, selfConflicts: [] };
    // The Lamport bound is taken before the batch, so a batch cannot ratchet itself up.
    const clockBefore = this.#clock.time;
    for (const wire of entries) {
      const one = this.#applyOne(now, from, wire, path, clockBefore);
      result.changes.push(...one.changes);
      if (one.status === 'applied') result.applied += 1;
      else if (one.status === 'stale') result.stale += 1;
      else result.refused += 1;
      const adopted = one.status === 'applied' && wire.owner === this.self && from !== this.self ? this.lookup(wire.table, wire.key) : undefined;
      if (adopted !== undefined) result.selfConflicts.push(adopted);
    }
    result.changes = this.#publish(result.changes);
    return result;
  }

  #applyOne(now: number, from: string, wire: WireEntry, path: 'gossip' | 'sync', clockBefore: number): ApplyResult {
    const refusal = this.#refusal(from, wire, path, clockBefore) ?? this.#signatureRefusal(wire, path);
    if (refusal !== undefined) {
      this.#counters[REFUSAL_COUNTER[refusal.status]] += 1;
      return { status: refusal.status, changes: [], reason: refusal.reason };
    }
    // Witness only admitted entries: a refused one must not drag our clock.
    this.#clock.witness(wire.lamport);
    if (path === 'sync' && wire.owner !== from) this.#counters.relayed += 1;
    const outcome = this.#merge(fromWire(wire, now, this.reapMsOf(wire.table)));
    this.#counters[outcome.status] += 1;
    if (outcome.status === 'applied' && wire.owner === this.self && from !== this.self) this.#counters.selfConflicts += 1;
    return { status: outcome.status, changes: outcome.change === undefined ? [] : [outcome.change] };
  }

  #refusal(from: string, wire: WireEntry, path: 'gossip' | 'sync', clockBefore: number): { status: Refusal; reason: string } | undefined {
    const bad = malformation(wire);
    if (bad !== undefined) return { status: 'malformed', reason: bad };
    const ahead = implausibleLamport(wire.lamport, clockBefore);
    if (ahead !== undefined) return { status: 'implausible', reason: `${wire.table}/${wire.key} of ${wire.owner}: ${ahead}` };
    if (path === 'gossip' && wire.owner !== from) return { status: 'forged', reason: `${from} published ${wire.table}/${wire.key} as if it were ${wire.owner}` };
    if (!this.#isAdmitted(wire.owner)) return { status: 'unadmitted', reason: `owner ${wire.owner} of ${wire.table}/${wire.key} is not an admitted member` };
    if (this.#liveness.isForgotten(wire.owner) && !this.#clusterScoped(wire.table)) return { status: 'forgotten', reason: `owner ${wire.owner} of ${wire.table}/${wire.key} was reaped` };
    return undefined;
  }

  /**
   * Only a version that would be applied is verified: an older one is dropped
   * anyway, and the same version again was verified when it was stored (a
   * copy with another signature is refused, so it cannot even shorten the
   * stored tombstone's reap time). One verification per version per node.
   * Over gossip the owner is the publisher (#refusal), and the transport has
   * checked the publisher's signature over the whole message with the same
   * key (gossipsub StrictSign), so the entry's own signature is only required
   * to be there: verifying it again would cost ~0.1 ms per entry on the
   * hottest path and prove nothing more. A member that gossips its own
   * entries with a bad signature only gets them refused when relayed.
   */
  #signatureRefusal(wire: WireEntry, path: 'gossip' | 'sync'): { status: Refusal; reason: string } | undefined {
    if (this.#verify === undefined) return undefined;
    const current = this.#tables.get(wire.table)?.get(wire.key)?.entry;
    const order = current === undefined ? 1 : compareVersions(wire, current);
    if (order < 0) return undefined;
    if (order === 0) {
      return current !== undefined && sameSignature(wire.signature, current.signature) ? undefined : { status: 'badSignature', reason: `a copy of ${wire.table}/${wire.key} with another signature` };
    }
    const signature = wire.signature;
    if (signature === undefined || signature.length === 0) return { status: 'badSignature', reason: `${wire.table}/${wire.key} of ${wire.owner} is not signed` };
    if (path === 'sync' && !this.#verify(wire.owner, signedFields(wire), signature)) return { status: 'badSignature', reason: `${wire.table}/${wire.key} is not signed by its owner ${wire.owner}` };
    return undefined;
  }

  // ---- merge core ---------------------------------------------------------

  #merge(entry: Entry): MergeOutcome {
    let rows = this.#tables.get(entry.table);
    const current = rows?.get(entry.key);
    if (current !== undefined) {
      const order = compareVersions(entry, current.entry);
      if (order < 0) return { status: 'stale', change: undefined };
      if (order === 0) return this.#sameVersionAgain(current, entry);
    }
    if (rows === undefined) {
      rows = new Map();
      this.#tables.set(entry.table, rows);
    }
    const before = current === undefined ? undefined : this.#visibleOrUndefined(current.entry);
    if (current !== undefined) this.#unindex(current);
    const stored: Stored = { entry, fp: fingerprint(entry) };
    rows.set(entry.key, stored);
    this.#index(stored);
    return { status: 'applied', change: visibleChange(before, this.#visibleOrUndefined(entry)) };
  }

  /**
   * The same tombstone can arrive with different residual reap times; keeping
   * the earliest deadline makes the result independent of arrival order.
   */
  #sameVersionAgain(current: Stored, entry: Entry): MergeOutcome {
    if (entry.reapAt !== undefined && (current.entry.reapAt === undefined || entry.reapAt < current.entry.reapAt)) {
      current.entry = { ...current.entry, reapAt: entry.reapAt };
    }
    return { status: 'stale', change: undefined };
  }

  #index(stored: Stored): void {
    this.#buckets.add(stored.entry.table, stored.entry.owner, stored.entry.key, stored.fp);
    if (stored.entry.deleted) this.#tombstones.add(stored);
  }

  #unindex(stored: Stored): void {
    this.#buckets.remove(stored.entry.table, stored.entry.owner, stored.entry.key, stored.fp);
    this.#tombstones.delete(stored);
  }

  #drop(stored: Stored): void {
    this.#unindex(stored);
    const rows = this.#tables.get(stored.entry.table);
    rows?.delete(stored.entry.key);
    if (rows?.size === 0) this.#tables.delete(stored.entry.table);
  }

  #publish(changes: Change[]): Change[] {
    this.#feed.publish(changes);
    return changes;
  }

  // ---- visibility ---------------------------------------------------------

  isVisible(entry: Entry): boolean {
    if (entry.deleted) return false;
    return this.#clusterScoped(entry.table) || !this.#liveness.isDead(entry.owner);
  }

  #visibleOrUndefined(entry: Entry): Entry | undefined {
    return this.isVisible(entry) ? entry : undefined;
  }

  /**
   * Membership's verdict on a node. Going dead hides its entries at once
   * (consumers see 'remove'); coming back within the reap time restores them
   * (consumers see 'add'), because they were kept.
   */
  setNodeLive(_now: number, node: string, live: boolean): Change[] {
    if (node === this.self) return [];
    const toggled = live ? this.#liveness.markLive(node) : this.#liveness.markDead(node);
    if (!toggled) return [];
    const changes: Change[] = [];
    for (const stored of this.#ownedBy(node)) {
      const { entry } = stored;
      if (entry.deleted || this.#clusterScoped(entry.table)) continue;
      changes.push({ op: live ? 'add' : 'remove', table: entry.table, key: entry.key, entry });
    }
    return this.#publish(changes);
  }

  /**
   * Drops a reaped node's owner-bound entries, and refuses them from now on
   * so that a peer that has not reaped the node yet cannot sync them back.
   * A node that rejoins is made live again by setNodeLive(…, true).
   */
  forgetNode(node: string): Change[] {
    if (node === this.self) throw new Error('a node cannot forget itself');
    const changes: Change[] = [];
    for (const stored of this.#ownedBy(node)) {
      if (this.#clusterScoped(stored.entry.table)) continue;
      const visible = this.#visibleOrUndefined(stored.entry);
      if (visible !== undefined) changes.push({ op: 'remove', table: visible.table, key: visible.key, entry: visible });
      this.#drop(stored);
    }
    this.#liveness.forget(node);
    return this.#publish(changes);
  }

  /**
   * Drops every entry of `table` not written by this node: a host that left a
   * network no longer hears of it, so its copy would only go stale (the
   * network's members keep the truth; joining again syncs it back).
   */
  forgetOthersIn(table: string): Change[] {
    const changes: Change[] = [];
    for (const stored of [...(this.#tables.get(table)?.values() ?? [])]) {
      if (stored.entry.owner === this.self) continue;
      const visible = this.#visibleOrUndefined(stored.entry);
      if (visible !== undefined) changes.push({ op: 'remove', table: visible.table, key: visible.key, entry: visible });
      this.#drop(stored);
    }
    return this.#publish(changes);
  }

  isNodeHidden(node: string): boolean {
    return this.#liveness.isDead(node);
  }

  #ownedBy(node: string): Stored[] {
    const owned: Stored[] = [];
    for (const table of [...this.#buckets.tables()]) {
      const bucket = this.#buckets.get(table, node);
      if (bucket === undefined) continue;
      for (const key of bucket.keys) {
        const stored = this.#tables.get(table)?.get(key);
        if (stored !== undefined) owned.push(stored);
      }
    }
    return owned;
  }

  // ---- tombstone reaping --------------------------------------------------

  /** Removes tombstones whose reap deadline has passed; returns how many. */
  reap(now: number): number {
    let reaped = 0;
    for (const stored of [...this.#tombstones]) {
      if ((stored.entry.reapAt ?? now) > now) continue;
      this.#drop(stored);
      reaped += 1;
    }
    return reaped;
  }

  // ---- reads --------------------------------------------------------------

  /** The visible entry of a key (what consumers see). */
  get(table: string, key: string): Entry | undefined {
    const stored = this.#tables.get(table)?.get(key);
    return stored === undefined ? undefined : this.#visibleOrUndefined(stored.entry);
  }

  /** The stored version of a key, including tombstones and hidden entries. */
  lookup(table: string, key: string): Entry | undefined {
    return this.#tables.get(table)?.get(key)?.entry;
  }

  /** Visible entries of a table, for a consumer's initial load. */
  list(table: string): Entry[] {
    const rows = this.#tables.get(table);
    if (rows === undefined) return [];
    return [...rows.values()].map((s) => s.entry).filter((e) => this.isVisible(e));
  }

  /** Every stored entry of a table (tombstones and hidden ones too). */
  stored(table: string): Entry[] {
    return [...(this.#tables.get(table)?.values() ?? [])].map((s) => s.entry);
  }

  /** Names of tables holding at least one stored entry. */
  tableNames(): string[] {
    return [...this.#tables.keys()];
  }

  /** Anti-entropy view: per-owner buckets of a table. */
  buckets(table: string): Iterable<Readonly<Bucket>> {
    return this.#buckets.buckets(table);
  }

  bucket(table: string, owner: string): Readonly<Bucket> | undefined {
    return this.#buckets.get(table, owner);
  }

  bucketEntries(table: string, owner: string): Entry[] {
    const bucket = this.#buckets.get(table, owner);
    if (bucket === undefined) return [];
    const rows = this.#tables.get(table);
    return [...bucket.keys].map((key) => rows?.get(key)?.entry).filter((e): e is Entry => e !== undefined);
  }

  // ---- consumers ----------------------------------------------------------

  /** Calls `listener` synchronously with every non-empty batch of visible changes. */
  subscribe(listener: ChangeListener, filter?: TableFilter): () => void {
    return this.#feed.subscribe(listener, filter);
  }
}

function sameSignature(a: Uint8Array | undefined, b: Uint8Array | undefined): boolean {
  if (a === undefined || a.length === 0 || b === undefined || b.length === 0) return (a?.length ?? 0) === (b?.length ?? 0);
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}

function positiveMs(name: string, value: number): number {
  if (!Number.isFinite(value) || value <= 0) throw new RangeError(`${name} must be a positive number of ms, got ${value}`);
  return value;
}
