// The replicated tables of one node: named tables of last-writer-wins
// entries, the liveness view that hides dead owners, and the change stream
// consumers apply. Pure: every call takes `now` (ms on the caller's
// monotonic clock) and returns what changed; nothing here sends or waits.
//
// State is a join semi-lattice: for each (table, key) the version that is
// greatest under compareVersions() wins, so applying any set of entries in
// any order, any number of times, gives the same state.
//
// The parts: tables-config.ts (settings and tombstone lifetimes),
// entry-store.ts (every stored version, its indexes, reaping),
// remote-checks.ts (which received entries may be merged). This file is
// the write paths, visibility and the change feed.

import type { Bucket } from './bucket.ts';
import { visibleChange } from './change.ts';
import type { Change } from './change.ts';
import { fromWire, toWire } from './entry.ts';
import type { Entry, WireEntry } from './entry.ts';
import { EntryStore } from './entry-store.ts';
import { ChangeFeed } from './feed.ts';
import type { ChangeListener, TableFilter } from './feed.ts';
import { LamportClock } from './lamport.ts';
import { NodeLiveness } from './liveness.ts';
import { refusalOf } from './remote-checks.ts';
import type { RemotePath, RemoteRules } from './remote-checks.ts';
import { REFUSAL_COUNTER } from './results.ts';
import { signedFields } from './signing.ts';
import type { EntrySigner } from './signing.ts';
import type { ApplyResult, BatchResult, LocalWrite, TableCounters } from './results.ts';
import { reapTimes } from './tables-config.ts';
import type { TablesConfig } from './tables-config.ts';

type MergeOutcome = { status: 'applied' | 'stale'; change: Change | undefined };

export class ReplicatedTables {
  readonly self: string;
  readonly reapMs: number;
  readonly clusterReapMs: number;
  readonly #clock: LamportClock;
  readonly #clusterScoped: TableFilter;
  readonly #sign: EntrySigner | undefined;
  readonly #rules: RemoteRules;
  readonly #store = new EntryStore();
  readonly #liveness = new NodeLiveness();
  readonly #feed = new ChangeFeed();
  readonly #counters: TableCounters = { applied: 0, stale: 0, forgeries: 0, unadmitted: 0, forgotten: 0, malformed: 0, relayed: 0, selfConflicts: 0, implausible: 0, badSignatures: 0 };

  constructor(config: TablesConfig) {
    if (config.self === '') throw new Error('tables need the node ID of this node');
    const { reapMs, clusterReapMs } = reapTimes(config);
    this.self = config.self;
    this.reapMs = reapMs;
    this.clusterReapMs = clusterReapMs;
    this.#clock = new LamportClock(config.initialLamport ?? 0);
    this.#clusterScoped = config.clusterScoped ?? (() => false);
    this.#sign = config.sign;
    this.#rules = {
      isAdmitted: config.isAdmitted ?? (() => true),
      isForgotten: (node) => this.#liveness.isForgotten(node),
      clusterScoped: this.#clusterScoped,
      verify: config.verify,
      current: (table, key) => this.#store.lookup(table, key),
    };
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
    const current = this.#store.lookup(table, key);
    if (current === undefined || current.deleted) return undefined;
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

  #applyMany(now: number, from: string, entries: readonly WireEntry[], path: RemotePath): BatchResult {
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

  #applyOne(now: number, from: string, wire: WireEntry, path: RemotePath, clockBefore: number): ApplyResult {
    const refusal = refusalOf(this.#rules, from, wire, path, clockBefore);
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

  /** Stores the entry if it wins, and says what consumers see change. */
  #merge(entry: Entry): MergeOutcome {
    const outcome = this.#store.merge(entry);
    if (outcome.status === 'stale') return { status: 'stale', change: undefined };
    const before = outcome.replaced === undefined ? undefined : this.#visibleOrUndefined(outcome.replaced);
    return { status: 'applied', change: visibleChange(before, this.#visibleOrUndefined(entry)) };
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
    for (const entry of this.#store.ownedBy(node)) {
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
    const changes = this.#dropAll(this.#store.ownedBy(node).filter((e) => !this.#clusterScoped(e.table)));
    this.#liveness.forget(node);
    return this.#publish(changes);
  }

  /**
   * Drops every entry of `table` not written by this node: a host that left a
   * network no longer hears of it, so its copy would only go stale (the
   * network's members keep the truth; joining again syncs it back).
   */
  forgetOthersIn(table: string): Change[] {
    return this.#publish(this.#dropAll(this.#store.entries(table).filter((e) => e.owner !== this.self)));
  }

  /** Drops `entries`; consumers see a `remove` for each one that was visible. */
  #dropAll(entries: readonly Entry[]): Change[] {
    const changes: Change[] = [];
    for (const entry of entries) {
      const visible = this.#visibleOrUndefined(entry);
      if (visible !== undefined) changes.push({ op: 'remove', table: visible.table, key: visible.key, entry: visible });
      this.#store.drop(entry.table, entry.key);
    }
    return changes;
  }

  isNodeHidden(node: string): boolean {
    return this.#liveness.isDead(node);
  }

  /** Removes tombstones whose reap deadline has passed; returns how many. */
  reap(now: number): number {
    return this.#store.reap(now);
  }

  // ---- reads --------------------------------------------------------------

  /** The visible entry of a key (what consumers see). */
  get(table: string, key: string): Entry | undefined {
    const entry = this.#store.lookup(table, key);
    return entry === undefined ? undefined : this.#visibleOrUndefined(entry);
  }

  /** The stored version of a key, including tombstones and hidden entries. */
  lookup(table: string, key: string): Entry | undefined {
    return this.#store.lookup(table, key);
  }

  /** Visible entries of a table, for a consumer's initial load. */
  list(table: string): Entry[] {
    return this.#store.entries(table).filter((e) => this.isVisible(e));
  }

  /** Every stored entry of a table (tombstones and hidden ones too). */
  stored(table: string): Entry[] {
    return this.#store.entries(table);
  }

  /** Names of tables holding at least one stored entry. */
  tableNames(): string[] {
    return this.#store.tableNames();
  }

  /** Anti-entropy view: per-owner buckets of a table. */
  buckets(table: string): Iterable<Readonly<Bucket>> {
    return this.#store.buckets(table);
  }

  bucket(table: string, owner: string): Readonly<Bucket> | undefined {
    return this.#store.bucket(table, owner);
  }

  bucketEntries(table: string, owner: string): Entry[] {
    return this.#store.bucketEntries(table, owner);
  }

  // ---- consumers ----------------------------------------------------------

  /** Calls `listener` synchronously with every non-empty batch of visible changes. */
  subscribe(listener: ChangeListener, filter?: TableFilter): () => void {
    return this.#feed.subscribe(listener, filter);
  }
}
