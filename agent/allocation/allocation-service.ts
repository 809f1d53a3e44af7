// Hosts the ring allocators (controlplane/allocation) on the real cluster.
// - Replication: each node publishes its view of every ring in the
//   `allocations` table under its own key and merges everyone else's.
// - /weft/alloc/1: space requests, forwarded frees and leave handovers.
// - Persistence: every change of this node's own ranges or values is saved
//   before the value is used or the reply leaves, so a restart never hands a
//   value out twice.
// - Safety over availability: with no reachable owner to ask, allocation
//   fails with the allocator's explanation; it never guesses.
// - Reclaiming (reclaimer.ts): the ranges of removed or left nodes come back
//   to the pool through one elected member, after a ring sync with all.
import type { Logger } from 'pino';
import {
  Allocator, goneOwners, spacesToReport, syncRefusal,
  type AllocError, type AllocResult, type AllocatorStats, type Donation, type FreeReply, type FreeRequest, type RingState, type RingSyncRequest, type SpaceReply, type SpaceRequest,
} from '../../controlplane/allocation/index.ts';
import type { Change } from '../../controlplane/tables/index.ts';
import type { TableService } from '../cluster/table-service.ts';
import { decodeRing, encodeRing, type HandoverReply, type RingSyncReply } from '../wire/allocation-codec.ts';
import { AllocRpcClient, ALLOC_PROTOCOL, serveAllocRpc, type AllocRpcNode } from './alloc-rpc.ts';
import { AllocationError } from './allocation-error.ts';
import { ConflictLog, type AllocationConflict } from './conflicts.ts';
import { allocationFindings } from './doctor-findings.ts';
import type { Finding } from '../../dataplane/doctor.ts';
import { KeyedSerializer } from '../../lib/serial.ts';
import { RECLAIM_INTERVAL_MS, Reclaimer, type BlockedReclaim } from './reclaimer.ts';
import { ALLOCATIONS_TABLE, parseRingKey, ringKey } from './ring-keys.ts';
import type { AllocationStore } from './store.ts';

export { AllocationError } from './allocation-error.ts';
export type { AllocationConflict } from './conflicts.ts';
export type { BlockedReclaim } from './reclaimer.ts';

/** A named integer space [start, end) for the ring allocator. */
export interface SpaceDefinition {
  name: string;
  start: number;
  end: number;
}

/** What the service needs from ClusterNode. */
export interface AllocationCluster {
  readonly nodeId: string;
  readonly libp2p: AllocRpcNode;
  readonly tables: Pick<TableService, 'set' | 'delete' | 'subscribe' | 'tables'>;
  /** Node IDs that failure detection holds alive or suspect, self included. */
  reachable(): string[];
  /** libp2p multiaddr (with /p2p/) of an active member. */
  addressOf(nodeId: string): string | undefined;
  nodeIdOfPeer(peerId: string): string | undefined;
  /** Admitted, left and removed members: who may reclaim, and whose ranges. */
  readonly roster: { all(): ReadonlyArray<{ nodeId: string; status: 'active' | 'left' | 'revoked' }> };
}

/**
 * Values cluster objects (networks, services, endpoints of active members)
 * use in a space, from this node's tables: a reclaim keeps them reserved.
 * Undefined: the space is no longer used (its network is gone), so nothing
 * there is reclaimed.
 */
export type InUseProvider = (space: string) => Iterable<number> | undefined;

/** A space's counts on this node, as the allocator keeps them. */
export type AllocationStats = AllocatorStats;

export interface LeaveReport {
  /** Spaces whose ranges went to another member; `confirmed` false when the reply was lost. */
  handedOver: Array<{ space: string; to: string; confirmed: boolean }>;
  /** Spaces whose ranges stay owned by this node (no member would take them). */
  kept: string[];
}

/** Refusals and failed exchanges one operation tolerates before giving up. */
const MAX_SETBACKS = 8;
/** Right after a join (no ring yet) or a handover (in-use list on its way): wait this long, not forever. */
const WAIT_FOR_STATE_MS = 10_000;
const POLL_MS = 250;
const MAX_SPACE_NAME = 64;
const MAX_SPACE_END = 2 ** 32;

type Phase = 'running' | 'leaving' | 'left' | 'stopped';

export class AllocationService {
  readonly #cluster: AllocationCluster;
  readonly #store: AllocationStore;
  readonly #log: Logger;
  readonly #rpc: AllocRpcClient;
  readonly #spaces = new Map<string, Allocator>();
  /** Spaces whose saved state could not be read: never initialised afresh here (that would fork the ring). */
  readonly #unrestorable = new Set<string>();
  // Local operations queue per space; requests from peers are not queued here:
  // each is one synchronous allocator step, and queueing them behind a local
  // operation that is itself waiting on a peer would deadlock two nodes asking
  // each other for space at the same moment.
  readonly #queue = new KeyedSerializer();
  readonly #conflicts = new ConflictLog();
  readonly #waiters = new Map<string, Set<() => void>>();
  readonly #reclaimer: Reclaimer;
  #inUse: InUseProvider = () => [];
  #unsubscribe: (() => void) | undefined;
  #phase: Phase = 'running';

  private constructor(cluster: AllocationCluster, store: AllocationStore, logger: Logger) {
    this.#cluster = cluster;
    this.#store = store;
    this.#log = logger.child({ component: 'allocation' });
    this.#rpc = new AllocRpcClient(cluster.libp2p);
    this.#reclaimer = new Reclaimer(
      {
        selfId: cluster.nodeId,
        roster: () => this.#roster(),
        addressOf: (id) => cluster.addressOf(id),
        ringSync: (address, request) => this.#rpc.ringSync(address, request),
        knownRings: (gone) => this.#knownRings(gone),
        takeOver: (space, rings, gone, inUse) => this.#takeOver(space, rings, gone, inUse),
      },
      this.#log,
    );
  }

  static async start(options: { cluster: AllocationCluster; store: AllocationStore; logger: Logger; reclaimIntervalMs?: number }): Promise<AllocationService> {
    const service = new AllocationService(options.cluster, options.store, options.logger);
    service.#restoreAll();
    service.#unsubscribe = options.cluster.tables.subscribe(
      (changes) => service.#onTableChanges(changes),
      (table) => table === ALLOCATIONS_TABLE,
    );
    // Rings that arrived while this node was down are in the (persisted, synced) table.
    for (const allocator of service.#spaces.values()) {
      service.#mergeFromTable(allocator);
      service.#publish(allocator);
    }
    try {
      await serveAllocRpc(options.cluster.libp2p, {
        selfId: options.cluster.nodeId,
        nodeIdOfPeer: (peer) => options.cluster.nodeIdOfPeer(peer),
        onSpace: (from, request) => service.#answerSpace(from, request),
        onFree: (from, request) => service.#answerFree(from, request),
        onHandover: (from, donation) => service.#acceptHandover(from, donation),
        onRingSync: (from, request) => service.#answerRingSync(from, request),
        onError: (error, peer) => service.#log.warn({ peer, err: error.message }, `refused or failed an ${ALLOC_PROTOCOL} request`),
      });
    } catch (error) {
      service.#unsubscribe();
      throw error;
    }
    service.#reclaimer.start(options.reclaimIntervalMs ?? RECLAIM_INTERVAL_MS);
    return service;
  }

  /** Where a reclaim learns which values cluster objects still use (the overlay's tables). */
  setInUse(provider: InUseProvider): void {
    this.#inUse = provider;
  }

  /** One reclaim attempt now (it also runs on a timer): tests, and `weft node rm` on the reclaimer. */
  reclaim(): Promise<void> {
    return this.#reclaimer.run();
  }

  /** `weft doctor`: refused ring merges and a reclaim that has been waiting too long. */
  findings(now = new Date()): Finding[] {
    return allocationFindings(this.conflicts(), this.blockedReclaim(), now);
  }

  /** Gone nodes' ranges this node would reclaim but cannot yet (a member does not answer). */
  blockedReclaim(): BlockedReclaim | undefined {
    return this.#reclaimer.blocked;
  }

  /**
   * Declares a space. With `initialise`, this node creates the ring owning
   * all of it, unless a ring for the space is already known (then it joins).
   * Declaring a known space again is a no-op; with other bounds, an error.
   */
  define(space: SpaceDefinition, initialise: boolean): void {
    this.#requireRunning();
    checkDefinition(space);
    const existing = this.#spaces.get(space.name);
    if (existing) {
      const ring = existing.ring;
      if (ring.start !== space.start || ring.end !== space.end) {
        throw new AllocationError('space-mismatch', `allocation space ${space.name} is [${ring.start}, ${ring.end}) on this node, not [${space.start}, ${space.end}); the space of an existing network or pool cannot change`);
      }
      return;
    }
    const known = this.#ringsInTable(space.name).filter((r) => r.ring.start === space.start && r.ring.end === space.end);
    const create = initialise && known.length === 0 && !this.#unrestorable.has(space.name);
    const allocator = create
      ? Allocator.init(this.#cluster.nodeId, space.name, space.start, space.end)
      : Allocator.join(this.#cluster.nodeId, space.name, space.start, space.end);
    for (const { from, ring } of known) this.#merge(allocator, ring, from, 'table');
    this.#spaces.set(space.name, allocator);
    this.#commit(allocator);
    if (create) this.#log.info({ space: space.name, start: space.start, end: space.end }, 'created an allocation ring');
  }

  /** The next free value of the space, asking owners for a share when this node has none. */
  allocate(space: string): Promise<number> {
    return this.#queue.run(space, () => this.#obtain(space, undefined, (a, reachable) => a.allocate(reachable)));
  }

  /** A user-requested value (VNI, subnet); refused with `in-use` when any node holds it. */
  allocateValue(space: string, value: number): Promise<number> {
    return this.#queue.run(space, () => this.#obtain(space, value, (a, reachable) => a.allocateValue(value, reachable)));
  }

  /** Returns a value to its owner's free space (forwarded when another node owns it now). */
  free(space: string, value: number): Promise<void> {
    return this.#queue.run(space, () => this.#release(space, value));
  }

  /** The network is gone: forget its space here and withdraw this node's ring view. */
  drop(space: string): void {
    const had = this.#spaces.delete(space);
    this.#unrestorable.delete(space);
    this.#conflicts.forget(space);
    this.#store.remove(space);
    if (this.#phase !== 'stopped') this.#cluster.tables.delete(ALLOCATIONS_TABLE, ringKey(space, this.#cluster.nodeId));
    this.#notify(space);
    if (had) this.#log.debug({ space }, 'dropped an allocation space');
  }

  /**
   * Graceful leave: hands every range this node owns, with the values still
   * in use, to a reachable member over /weft/alloc/1. The caller releases
   * node-local values (its endpoints' addresses) first. Afterwards the
   * service refuses new operations.
   */
  async leave(): Promise<LeaveReport> {
    this.#requireRunning();
    this.#phase = 'leaving';
    const report: LeaveReport = { handedOver: [], kept: [] };
    try {
      for (const space of [...this.#spaces.keys()].sort()) {
        await this.#queue.run(space, () => this.#handOver(space, report));
      }
    } finally {
      this.#phase = 'left';
    }
    if (report.kept.length > 0) this.#log.warn({ spaces: report.kept }, 'left with allocation ranges no member would take; they stay reserved for this node until it is removed (weft node rm) and reclaimed');
    return report;
  }

  stats(space: string): AllocationStats | undefined {
    return this.#spaces.get(space)?.stats();
  }

  /** This node's view of a space's ring (tests, diagnostics). */
  ring(space: string): RingState | undefined {
    return this.#spaces.get(space)?.ring;
  }

  /** Spaces this node allocates from. */
  spaces(): string[] {
    return [...this.#spaces.keys()].sort();
  }

  /** Ring merges refused as conflicting (never applied), for logs and `weft doctor`. */
  conflicts(): AllocationConflict[] {
    return this.#conflicts.list();
  }

  stop(): void {
    if (this.#phase === 'stopped') return;
    this.#phase = 'stopped';
    this.#reclaimer.stop();
    this.#unsubscribe?.();
    // The handler is removed synchronously; the returned promise only updates the peer store.
    this.#cluster.libp2p.unhandle(ALLOC_PROTOCOL).catch(() => undefined);
    for (const space of [...this.#waiters.keys()]) this.#notify(space);
  }

  // ---- local operations ----

  async #obtain(space: string, value: number | undefined, step: (a: Allocator, reachable: string[]) => AllocResult): Promise<number> {
    const attempts = new Attempts(`could not get ${space} space`);
    for (;;) {
      this.#requireRunning();
      const allocator = this.#require(space);
      const result = step(allocator, this.#reachable(attempts.failedPeers));
      if (result.kind === 'allocated') {
        this.#commit(allocator);
        return result.value;
      }
      if (result.kind === 'failed') {
        await this.#waitOutTransient(space, result.error, attempts);
        continue;
      }
      attempts.checkNotExhausted();
      const { request } = result;
      let reply: SpaceReply;
      try {
        reply = checkSpaceReply(request, await this.#rpc.space(this.#addressOf(request.to), request));
      } catch (error) {
        // Ask someone else this time; if nobody else owns space, the allocator says so.
        attempts.peerFailed(request.to, error as Error);
        this.#log.warn({ space, peer: request.to, err: (error as Error).message }, 'a space request failed');
        continue;
      }
      if (this.#spaces.get(space) !== allocator) throw this.#unknownSpace(space);
      if (reply.kind === 'donated' && this.#cluster.addressOf(request.to) === undefined) {
        // The donor was removed meanwhile: the reclaimer may already have
        // synced with us, so a range taken from it now could be reclaimed too.
        attempts.failedPeers.add(request.to);
        attempts.setback(`${request.to} is no longer an active member`);
        continue;
      }
      const merged = allocator.receiveReply(reply);
      if (!merged.ok) {
        this.#conflict(space, request.to, 'reply', merged.explanations);
        attempts.setback(`the reply of ${request.to} conflicts with this node's ring`);
        continue;
      }
      if (reply.kind === 'donated') {
        this.#commit(allocator); // our ranges changed: durable before any value from them is used
        continue;
      }
      const { reason } = reply.refusal;
      if (reason === 'in-use' && value !== undefined) {
        throw new AllocationError('in-use', `${space} value ${value} is already in use (node ${request.to} holds it); choose another value, or leave it out to get a free one`, [request.to]);
      }
      await this.#refused(space, request.to, reason, attempts);
    }
  }

  async #release(space: string, value: number): Promise<void> {
    const attempts = new Attempts(`could not free ${space} value ${value}`);
    for (;;) {
      this.#requireRunning();
      const allocator = this.#require(space);
      const result = allocator.free(value, this.#reachable(attempts.failedPeers));
      if (result.kind === 'freed') {
        this.#commit(allocator);
        return;
      }
      if (result.kind === 'failed') {
        await this.#waitOutTransient(space, result.error, attempts);
        continue;
      }
      attempts.checkNotExhausted();
      const { request } = result;
      let reply: FreeReply;
      try {
        reply = checkFreeReply(request, await this.#rpc.free(this.#addressOf(request.to), request));
      } catch (error) {
        attempts.peerFailed(request.to, error as Error);
        continue;
      }
      if (reply.kind === 'freed') return;
      const merged = allocator.merge(reply.refusal.ring);
      if (!merged.ok) this.#conflict(space, request.to, 'reply', merged.explanations);
      const { reason } = reply.refusal;
      if (reason === 'not-allocated') {
        throw new AllocationError('not-allocated', `${space} value ${value} is not allocated: its owner ${request.to} has no record of it, so there is nothing to free`, [request.to]);
      }
      // not-owner: the value changed hands; the merged ring names the new owner.
      await this.#refused(space, request.to, reason, attempts);
    }
  }

  /** A local refusal: wait for a change of the space if it may pass (and time is left), else throw it. */
  async #waitOutTransient(space: string, error: AllocError, attempts: Attempts): Promise<void> {
    if (!isTransient(error.code) || Date.now() >= attempts.deadline) throw AllocationError.from(error);
    await this.#changeOf(space, attempts.deadline);
  }

  /** A peer refused: count it, and wait for the handover it is waiting for if time is left. */
  async #refused(space: string, peer: string, reason: string, attempts: Attempts): Promise<void> {
    attempts.setback(`${peer} refused: ${reason}`);
    if (reason === 'awaiting-handover' && Date.now() < attempts.deadline) await this.#changeOf(space, attempts.deadline);
  }

  async #handOver(space: string, report: LeaveReport): Promise<void> {
    const self = this.#cluster.nodeId;
    const initial = this.#spaces.get(space);
    if (!initial || initial.ownedRanges().length === 0) return;
    for (const to of this.#cluster.reachable().filter((id) => id !== self).sort()) {
      const address = this.#cluster.addressOf(to);
      const allocator = this.#spaces.get(space);
      if (!address || !allocator) continue;
      const before = { ring: allocator.ring, allocated: allocator.allocated() };
      const sent: { donation?: Donation | undefined } = {};
      let reply: HandoverReply | undefined;
      try {
        // The ranges leave this node's ring only once `to` is connected.
        reply = await this.#rpc.handover(address, () => (sent.donation = allocator.leave(to)));
      } catch (error) {
        // Not connected (or nothing built): nothing left this node; try the next member.
        if (sent.donation === undefined) continue;
        // The donation may have arrived. Never take the ranges back: two
        // owners could hand out the same values. At worst `to` holds them
        // unusable (awaiting handover) until this node is reclaimed.
        this.#commit(allocator);
        this.#log.error({ space, to, err: (error as Error).message }, 'the handover reply was lost; the ranges count as handed over');
        report.handedOver.push({ space, to, confirmed: false });
        return;
      }
      const { donation } = sent;
      if (donation === undefined) return; // owned nothing after all
      if (reply?.accepted) {
        this.#commit(allocator);
        report.handedOver.push({ space, to, confirmed: true });
        this.#log.info({ space, to, values: donation.allocated.length }, 'handed allocation ranges over');
        return;
      }
      // Refused: `to` did not take them; they are still ours.
      this.#log.warn({ space, to, reason: reply?.reason }, 'a member refused the handover; trying another');
      const restored = Allocator.restore(self, before.ring, before.allocated);
      this.#mergeFromTable(restored);
      this.#spaces.set(space, restored);
    }
    report.kept.push(space);
  }

  // ---- serving peers (each a synchronous step: see #queue) ----

  #answerSpace(from: string, request: SpaceRequest): SpaceReply {
    const allocator = this.#spaces.get(request.space) ?? this.#adopt(request.space);
    const reply = allocator.handleSpaceRequest(request);
    if (reply.kind === 'donated') {
      this.#commit(allocator); // the range is gone from here before the asker can use it
      this.#log.debug({ space: request.space, to: from, value: request.value }, 'donated allocation space');
    }
    return reply;
  }

  #answerFree(from: string, request: FreeRequest): FreeReply {
    const allocator = this.#spaces.get(request.space) ?? this.#adopt(request.space);
    const reply = allocator.handleFreeRequest(request);
    if (reply.kind === 'freed') {
      this.#commit(allocator);
      this.#notify(request.space);
      this.#log.debug({ space: request.space, for: from, value: request.value }, 'freed a value on behalf of a peer');
    }
    return reply;
  }

  #acceptHandover(from: string, donation: Donation): HandoverReply {
    if (this.#phase !== 'running') return { accepted: false, reason: `node ${this.#cluster.nodeId} is ${this.#phase === 'stopped' ? 'stopping' : 'leaving the cluster'}` };
    const known = this.#spaces.get(donation.space);
    const allocator = known ?? Allocator.join(this.#cluster.nodeId, donation.space, donation.ring.start, donation.ring.end);
    if (!known) this.#mergeFromTable(allocator);
    const merged = allocator.receiveDonation(donation);
    if (!merged.ok) {
      this.#conflict(donation.space, from, 'handover', merged.explanations);
      return { accepted: false, reason: merged.explanations.join('; ') };
    }
    this.#spaces.set(donation.space, allocator);
    this.#commit(allocator);
    this.#notify(donation.space);
    this.#log.info({ space: donation.space, from, values: donation.allocated.length }, 'took over allocation ranges from a leaving member');
    return { accepted: true, reason: '' };
  }

  /** A reclaimer's ring sync: refused unless it is the reclaimer in our roster too and we know the nodes are gone. */
  #answerRingSync(from: string, request: RingSyncRequest): RingSyncReply {
    const refused = syncRefusal(request, { active: new Set(this.#roster().active) });
    if (refused !== undefined) return { refused };
    const rings = spacesToReport(request, this.#knownRings(new Set(request.gone)));
    const inUse: Array<{ space: string; values: number[] }> = [];
    for (const space of new Set(rings.map((r) => r.space))) {
      const values = this.#inUse(space);
      if (values !== undefined) inUse.push({ space, values: [...values] });
    }
    this.#log.debug({ from, gone: request.gone, spaces: rings.length }, 'answered a reclaimer’s ring sync');
    return { refused: '', rings, inUse };
  }

  /**
   * The reclaimer's step for one space, as one local operation: merge every
   * member's ring (and the gone nodes' last published ones), then take over
   * the ranges gone nodes still own, keeping the values cluster objects use.
   */
  #takeOver(space: string, rings: RingState[], gone: ReadonlySet<string>, inUse: ReadonlySet<number>): Promise<number> {
    return this.#queue.run(space, async () => {
      if (this.#phase !== 'running') return 0;
      const ownInUse = this.#inUse(space);
      if (ownInUse === undefined) return 0; // the space is no longer used here: nothing worth taking over
      const bounds = rings[0] ?? this.#spaces.get(space)?.ring;
      if (!bounds) return 0;
      const known = this.#spaces.get(space);
      const allocator = known ?? Allocator.join(this.#cluster.nodeId, space, bounds.start, bounds.end);
      if (!known) this.#mergeFromTable(allocator);
      for (const ring of [...rings, ...this.#knownRings(gone).filter((r) => r.space === space)]) {
        const outcome = allocator.merge(ring);
        if (!outcome.ok) {
          // Never reclaim on top of a conflict: the ring is not what every member holds.
          this.#conflict(space, 'reclaim', 'sync', outcome.explanations);
          return 0;
        }
      }
      const keep = new Set([...inUse, ...ownInUse]);
      let taken = 0;
      for (const owner of goneOwners(allocator.ring, gone)) taken += allocator.reclaim(owner, keep);
      if (taken === 0) return 0;
      this.#spaces.set(space, allocator);
      this.#commit(allocator); // durable before anyone learns we own these ranges
      this.#notify(space);
      return taken;
    });
  }

  /** This node's rings plus the rings gone nodes last published (hidden entries too: they died with their ranges). */
  #knownRings(gone: ReadonlySet<string>): RingState[] {
    const rings = [...this.#spaces.values()].map((a) => a.ring).filter((r) => r.tokens.length > 0);
    for (const entry of this.#cluster.tables.tables.stored(ALLOCATIONS_TABLE)) {
      if (entry.deleted || !gone.has(entry.owner)) continue;
      const published = this.#publishedRing(entry.key, entry.owner, entry.value);
      if (published) rings.push(published.ring);
    }
    return rings;
  }

  #roster(): { active: string[]; gone: string[] } {
    const active: string[] = [];
    const gone: string[] = [];
    for (const member of this.#cluster.roster.all()) (member.status === 'active' ? active : gone).push(member.nodeId);
    return { active, gone };
  }

  /** A request for a space this node has not declared: learn the space from the table. */
  #adopt(space: string): Allocator {
    const rings = this.#ringsInTable(space);
    const first = rings[0]?.ring;
    if (!first) throw new Error(`this node knows no allocation space ${space}`);
    const allocator = Allocator.join(this.#cluster.nodeId, space, first.start, first.end);
    for (const { from, ring } of rings) this.#merge(allocator, ring, from, 'table');
    this.#spaces.set(space, allocator);
    this.#persist(allocator);
    return allocator;
  }

  // ---- replication ----

  #onTableChanges(changes: readonly Change[]): void {
    for (const change of changes) {
      if (change.op === 'remove') continue; // a withdrawn or hidden view: what we merged stays true
      const published = this.#publishedRing(change.key, change.entry.owner, change.entry.value);
      if (!published || published.from === this.#cluster.nodeId) continue;
      const allocator = this.#spaces.get(published.ring.space);
      if (allocator && this.#merge(allocator, published.ring, published.from, 'table')) this.#notify(allocator.space);
    }
  }

  /** The ring under a table key, if the key is well-formed and written by the node it names. */
  #publishedRing(key: string, owner: string, value: Uint8Array): { from: string; ring: RingState } | undefined {
    const parsed = parseRingKey(key);
    if (!parsed || parsed.nodeId !== owner) {
      this.#log.warn({ key, owner }, 'ignored an allocations entry not written by the node its key names');
      return undefined;
    }
    try {
      const ring = decodeRing(value);
      if (ring.space !== parsed.space) throw new Error(`the key names space ${parsed.space} but the ring is for ${ring.space}`);
      return { from: owner, ring };
    } catch (error) {
      this.#log.warn({ key, err: (error as Error).message }, 'ignored a malformed allocation ring');
      return undefined;
    }
  }

  #ringsInTable(space: string): Array<{ from: string; ring: RingState }> {
    const rings = [];
    for (const entry of this.#cluster.tables.tables.list(ALLOCATIONS_TABLE)) {
      if (!entry.key.startsWith(space + '|')) continue;
      const published = this.#publishedRing(entry.key, entry.owner, entry.value);
      if (published && published.ring.space === space) rings.push(published);
    }
    return rings;
  }

  #mergeFromTable(allocator: Allocator): void {
    for (const { from, ring } of this.#ringsInTable(allocator.space)) {
      if (from !== this.#cluster.nodeId) this.#merge(allocator, ring, from, 'table');
    }
  }

  /** Merging others' tokens never changes this node's own ranges, so it needs no save: the table is re-merged at start. */
  #merge(allocator: Allocator, ring: RingState, from: string, via: AllocationConflict['via']): boolean {
    const outcome = allocator.merge(ring);
    if (outcome.ok) return outcome.changed;
    this.#conflict(allocator.space, from, via, outcome.explanations);
    return false;
  }

  #conflict(space: string, source: string, via: AllocationConflict['via'], explanations: string[]): void {
    if (this.#conflicts.record(space, source, via, explanations, new Date())) {
      this.#log.error({ space, source, via, explanations }, 'refused a conflicting allocation ring (kept for weft doctor)');
    }
  }

  // ---- persistence ----

  #restoreAll(): void {
    for (const space of this.#store.spaces()) {
      try {
        const saved = this.#store.load(space);
        if (saved) this.#spaces.set(space, Allocator.restore(this.#cluster.nodeId, saved.ring, saved.allocated));
      } catch (error) {
        this.#unrestorable.add(space);
        const message = `could not restore the saved ${space} allocation state: ${(error as Error).message}; the space relearns the ring from peers and ranges with values in use stay unusable`;
        this.#conflicts.record(space, this.#cluster.nodeId, 'restore', [message], new Date());
        this.#log.error({ space }, message);
      }
    }
  }

  /** Save, then publish: a value is never visible as taken, or handed out, before it is durable. */
  #commit(allocator: Allocator): void {
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
    if (this.#phase === 'stopped' || allocator.ring.tokens.length === 0) return;
    this.#cluster.tables.set(ALLOCATIONS_TABLE, ringKey(allocator.space, this.#cluster.nodeId), encodeRing(allocator.ring));
  }

  // ---- helpers ----

  #reachable(exclude: ReadonlySet<string>): string[] {
    return this.#cluster.reachable().filter((id) => !exclude.has(id));
  }

  #addressOf(nodeId: string): string {
    const address = this.#cluster.addressOf(nodeId);
    if (!address) throw new Error(`node ${nodeId} is not an active member`);
    return address;
  }

  #require(space: string): Allocator {
    const allocator = this.#spaces.get(space);
    if (!allocator) throw this.#unknownSpace(space);
    return allocator;
  }

  #unknownSpace(space: string): AllocationError {
    return new AllocationError('unknown-space', `allocation space ${space} is not defined on this node (its network may have been removed)`);
  }

  #requireRunning(): void {
    if (this.#phase === 'running') return;
    if (this.#phase === 'stopped') throw new AllocationError('stopped', 'the allocation service is stopped; the agent is shutting down or left the cluster');
    throw new AllocationError('left', 'this node is leaving or has left the cluster and allocates nothing; join a cluster again first');
  }

  #notify(space: string): void {
    const waiters = this.#waiters.get(space);
    if (!waiters) return;
    this.#waiters.delete(space);
    for (const wake of waiters) wake();
  }

  /** Resolves when the space's allocator changes, or after a short poll interval (never later than `deadline`). */
  #changeOf(space: string, deadline: number): Promise<void> {
    return new Promise((resolve) => {
      const waiters = this.#waiters.get(space) ?? new Set<() => void>();
      this.#waiters.set(space, waiters);
      const wake = (): void => {
        clearTimeout(timer);
        waiters.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, Math.max(0, Math.min(POLL_MS, deadline - Date.now())));
      waiters.add(wake);
    });
  }
}

/** One local operation's budget: refusals and failed exchanges, and how long it may wait for state. */
class Attempts {
  readonly deadline = Date.now() + WAIT_FOR_STATE_MS;
  /** Peers whose exchange failed: the allocator asks someone else next. */
  readonly failedPeers = new Set<string>();
  readonly #what: string;
  #setbacks = 0;
  #last = '';

  constructor(what: string) {
    this.#what = what;
  }

  setback(reason: string): void {
    this.#setbacks++;
    this.#last = reason;
  }

  peerFailed(peer: string, error: Error): void {
    this.failedPeers.add(peer);
    this.setback(`asking ${peer} failed: ${error.message}`);
  }

  checkNotExhausted(): void {
    if (this.#setbacks < MAX_SETBACKS) return;
    throw new AllocationError('gave-up', `${this.#what} after ${this.#setbacks} refusals or failed requests (last: ${this.#last}); retry shortly`);
  }
}

function isTransient(code: string): boolean {
  return code === 'no-ring' || code === 'awaiting-handover';
}

function checkDefinition(space: SpaceDefinition): void {
  if (space.name === '' || space.name.length > MAX_SPACE_NAME || space.name.includes('|')) {
    throw new AllocationError('out-of-space', `allocation space name ${JSON.stringify(space.name)} must be 1-${MAX_SPACE_NAME} characters without "|"`);
  }
  if (!Number.isSafeInteger(space.start) || !Number.isSafeInteger(space.end) || space.start < 0 || space.end <= space.start || space.end > MAX_SPACE_END) {
    throw new AllocationError('out-of-space', `allocation space ${space.name} must be integers 0 <= start < end <= 2^32, got [${space.start}, ${space.end})`);
  }
}

/** A reply must come from the node asked, about the space asked, for this node. */
function checkSpaceReply(request: SpaceRequest, reply: SpaceReply): SpaceReply {
  const m = reply.kind === 'donated' ? reply.donation : reply.refusal;
  if (m.space !== request.space || m.from !== request.to || m.to !== request.from) {
    throw new Error(`reply about ${m.space} from ${m.from} to ${m.to} does not answer a ${request.space} request from ${request.from} to ${request.to}`);
  }
  return reply;
}

function checkFreeReply(request: FreeRequest, reply: FreeReply): FreeReply {
  if (reply.kind === 'freed') {
    if (reply.value !== request.value) throw new Error(`free reply names value ${reply.value}, not ${request.value}`);
    return reply;
  }
  const m = reply.refusal;
  if (m.space !== request.space || m.from !== request.to || m.to !== request.from) {
    throw new Error(`free refusal about ${m.space} from ${m.from} does not answer a ${request.space} request to ${request.to}`);
  }
  return reply;
}
