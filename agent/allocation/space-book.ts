// The allocators of this node's spaces, and the two places each change of
// this node's own ranges or values must reach: the disk (store.ts) and the
// allocations table (ring-table.ts), in that order, so that a value is never
// visible as taken, or handed out, before it is durable and a restart never
// hands a value out twice. Rings merged from peers are checked by the
// allocator; a merge it refuses is never applied and is kept for `weft doctor`.
import type { Logger } from 'pino';
import { Allocator, type RingState } from '../../controlplane/allocation/index.ts';
import { AllocationError } from './allocation-error.ts';
import { ConflictLog, type AllocationConflict } from './conflicts.ts';
import type { PublishedRing, RingTable } from './ring-table.ts';
import { SpaceWaiters } from './space-waiters.ts';
import type { AllocationStore } from './store.ts';
import type { SpaceDefinition } from './validation.ts';

export class SpaceBook {
  readonly waiters = new SpaceWaiters();
  readonly #selfId: string;
  readonly #store: AllocationStore;
  readonly #rings: RingTable;
  readonly #log: Logger;
  /** The service is stopping: nothing more is published. */
  readonly #stopped: () => boolean;
  readonly #spaces = new Map<string, Allocator>();
  /** Spaces whose saved state could not be read: never initialised afresh here (that would fork the ring). */
  readonly #unrestorable = new Set<string>();
  readonly #conflicts = new ConflictLog();

  constructor(options: { selfId: string; store: AllocationStore; rings: RingTable; log: Logger; stopped: () => boolean }) {
    this.#selfId = options.selfId;
    this.#store = options.store;
    this.#rings = options.rings;
    this.#log = options.log;
    this.#stopped = options.stopped;
  }

  get(space: string): Allocator | undefined {
    return this.#spaces.get(space);
  }

  require(space: string): Allocator {
    const allocator = this.#spaces.get(space);
    if (!allocator) throw this.unknownSpace(space);
    return allocator;
  }

  unknownSpace(space: string): AllocationError {
    return new AllocationError('unknown-space', `allocation space ${space} is not defined on this node (its network may have been removed)`);
  }

  /** Makes `allocator` the space's (after a handover, a reclaim or a restore). */
  set(allocator: Allocator): void {
    this.#spaces.set(allocator.space, allocator);
  }

  names(): string[] {
    return [...this.#spaces.keys()].sort();
  }

  /** Ring merges refused as conflicting (never applied). */
  conflicts(): AllocationConflict[] {
    return this.#conflicts.list();
  }

  // ---- spaces coming and going ----

  /** See AllocationService.define; `space` is checked already. */
  define(space: SpaceDefinition, initialise: boolean): void {
    const existing = this.#spaces.get(space.name);
    if (existing) {
      const ring = existing.ring;
      if (ring.start !== space.start || ring.end !== space.end) {
        throw new AllocationError('space-mismatch', `allocation space ${space.name} is [${ring.start}, ${ring.end}) on this node, not [${space.start}, ${space.end}); the space of an existing network or pool cannot change`);
      }
      return;
    }
    const known = this.#rings.ofSpace(space.name).filter((r) => r.ring.start === space.start && r.ring.end === space.end);
    const create = initialise && known.length === 0 && !this.#unrestorable.has(space.name);
    const allocator = create
      ? Allocator.init(this.#selfId, space.name, space.start, space.end)
      : Allocator.join(this.#selfId, space.name, space.start, space.end);
    for (const { from, ring } of known) this.merge(allocator, ring, from, 'table');
    this.#spaces.set(space.name, allocator);
    this.commit(allocator);
    if (create) this.#log.info({ space: space.name, start: space.start, end: space.end }, 'created an allocation ring');
  }

  /** A request for a space this node has not declared: learn the space from the table. */
  adopt(space: string): Allocator {
    const rings = this.#rings.ofSpace(space);
    const first = rings[0]?.ring;
    if (!first) throw new Error(`this node knows no allocation space ${space}`);
    const allocator = Allocator.join(this.#selfId, space, first.start, first.end);
    for (const { from, ring } of rings) this.merge(allocator, ring, from, 'table');
    this.#spaces.set(space, allocator);
    this.#persist(allocator);
    return allocator;
  }

  /** The space's allocator, or (not yet registered) a new member of its ring caught up from the table. */
  knownOrJoined(space: string, start: number, end: number): Allocator {
    const known = this.#spaces.get(space);
    if (known) return known;
    const allocator = Allocator.join(this.#selfId, space, start, end);
    this.mergeFromTable(allocator);
    return allocator;
  }

  /** Forgets a space here and withdraws this node's view of its ring; false when it was not known. */
  drop(space: string): boolean {
    const had = this.#spaces.delete(space);
    this.#unrestorable.delete(space);
    this.#conflicts.forget(space);
    this.#store.remove(space);
    if (!this.#stopped()) this.#rings.withdraw(space);
    this.waiters.notify(space);
    return had;
  }

  // ---- merging ----

  /** Another node published a ring: merge it into the space, if this node allocates from it. */
  onPublishedRing({ from, ring }: PublishedRing): void {
    const allocator = this.#spaces.get(ring.space);
    if (allocator && this.merge(allocator, ring, from, 'table')) this.waiters.notify(allocator.space);
  }

  mergeFromTable(allocator: Allocator): void {
    for (const { from, ring } of this.#rings.ofSpace(allocator.space)) {
      if (from !== this.#selfId) this.merge(allocator, ring, from, 'table');
    }
  }

  /** Merging others' tokens never changes this node's own ranges, so it needs no save: the table is re-merged at start. */
  merge(allocator: Allocator, ring: RingState, from: string, via: AllocationConflict['via']): boolean {
    const outcome = allocator.merge(ring);
    if (outcome.ok) return outcome.changed;
    this.conflict(allocator.space, from, via, outcome.explanations);
    return false;
  }

  conflict(space: string, source: string, via: AllocationConflict['via'], explanations: string[]): void {
    if (this.#conflicts.record(space, source, via, explanations, new Date())) {
      this.#log.error({ space, source, via, explanations }, 'refused a conflicting allocation ring (kept for weft doctor)');
    }
  }

  /** This node's rings plus the rings gone nodes last published. */
  knownRings(gone: ReadonlySet<string>): RingState[] {
    const rings = [...this.#spaces.values()].map((a) => a.ring).filter((r) => r.tokens.length > 0);
    return [...rings, ...this.#rings.ofGone(gone)];
  }

  // ---- persistence ----

  /** At start: every saved space; a space that cannot be read is reported and relearnt, never re-created. */
  restoreAll(): void {
    for (const space of this.#store.spaces()) {
      try {
        const saved = this.#store.load(space);
        if (saved) this.#spaces.set(space, Allocator.restore(this.#selfId, saved.ring, saved.allocated));
      } catch (error) {
        this.#unrestorable.add(space);
        const message = `could not restore the saved ${space} allocation state: ${(error as Error).message}; the space relearns the ring from peers and ranges with values in use stay unusable`;
        this.#conflicts.record(space, this.#selfId, 'restore', [message], new Date());
        this.#log.error({ space }, message);
      }
    }
  }

  /** At start: rings that arrived while this node was down are in the (persisted, synced) table. */
  catchUp(): void {
    for (const allocator of this.#spaces.values()) {
      this.mergeFromTable(allocator);
      this.#publish(allocator);
    }
  }

  /** Save, then publish: a value is never visible as taken, or handed out, before it is durable. */
  commit(allocator: Allocator): void {
    if (this.#spaces.get(allocator.space) !== allocator) return; // dropped or replaced meanwhile
    this.#persist(allocator);
    this.#publish(allocator);
  }

  #persist(allocator: Allocator): void {
    try {
      this.#store.save(allocator.space, { ring: allocator.ring, allocated: allocator.allocated() });
    } catch (error) {
      throw new AllocationError('store-failed', `could not save the ${allocator.space} allocation state: ${(error as Error).message}; fix the data directory (space, permissions) and retry`);
    }
  }

  #publish(allocator: Allocator): void {
    if (this.#stopped() || allocator.ring.tokens.length === 0) return;
    this.#rings.publish(allocator.ring);
  }
}
