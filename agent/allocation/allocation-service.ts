// Hosts the ring allocators (controlplane/allocation) on the real cluster.
// The parts, each in a file of its own:
// - space-book.ts: this node's allocators; every change of its own ranges or
//   values is saved (store.ts) before it is published or used, so a restart
//   never hands a value out twice.
// - ring-table.ts: replication; each node publishes its view of every ring
//   in the `allocations` table under its own key and merges everyone else's.
// - owner-requests.ts: taking and freeing values, asking owners over
//   /weft/alloc/1 (alloc-rpc.ts) when this node cannot do it alone. Safety
//   over availability: with no reachable owner to ask, allocation fails
//   with the allocator's explanation; it never guesses.
// - peer-answers.ts: the answers to other members' requests.
// - handover.ts: a graceful leave hands this node's ranges to a member.
// - reclaimer.ts: the ranges of removed or left nodes come back to the pool
//   through one elected member, after a ring sync with all.
// This file ties them together, serialises local operations per space and
// keeps the service's phase.
import type { Logger } from 'pino';
import { goneOwners, type AllocatorStats, type RingState } from '../../controlplane/allocation/index.ts';
import type { Finding } from '../../dataplane/doctor.ts';
import { KeyedSerializer } from '../../lib/serial.ts';
import { AllocRpcClient, ALLOC_PROTOCOL, serveAllocRpc } from './alloc-rpc.ts';
import { rosterSplit, type AllocationCluster, type AllocationContext, type InUseProvider, type Phase, requireRunning } from './allocation-context.ts';
import type { AllocationConflict } from './conflicts.ts';
import { allocationFindings } from './doctor-findings.ts';
import { handOver, type LeaveReport } from './handover.ts';
import { OwnerRequests } from './owner-requests.ts';
import { peerAnswers } from './peer-answers.ts';
import { RECLAIM_INTERVAL_MS, Reclaimer, type BlockedReclaim } from './reclaimer.ts';
import { RingTable } from './ring-table.ts';
import { SpaceBook } from './space-book.ts';
import type { AllocationStore } from './store.ts';
import { checkDefinition, type SpaceDefinition } from './validation.ts';

export { AllocationError } from './allocation-error.ts';
export type { AllocationCluster, InUseProvider } from './allocation-context.ts';
export type { AllocationConflict } from './conflicts.ts';
export type { LeaveReport } from './handover.ts';
export type { BlockedReclaim } from './reclaimer.ts';
export type { SpaceDefinition } from './validation.ts';

export class AllocationService {
  readonly #ctx: AllocationContext;
  readonly #cluster: AllocationCluster;
  readonly #book: SpaceBook;
  readonly #rings: RingTable;
  readonly #log: Logger;
  readonly #requests: OwnerRequests;
  // Local operations queue per space; requests from peers are not queued here
  // (peer-answers.ts says why).
  readonly #queue = new KeyedSerializer();
  readonly #reclaimer: Reclaimer;
  #inUse: InUseProvider = () => [];
  #unsubscribe: (() => void) | undefined;
  #phase: Phase = 'running';

  private constructor(cluster: AllocationCluster, store: AllocationStore, logger: Logger) {
    this.#cluster = cluster;
    this.#log = logger.child({ component: 'allocation' });
    this.#rings = new RingTable(cluster.nodeId, cluster.tables, this.#log);
    this.#book = new SpaceBook({ selfId: cluster.nodeId, store, rings: this.#rings, log: this.#log, stopped: () => this.#phase === 'stopped' });
    const rpc = new AllocRpcClient(cluster.libp2p);
    this.#ctx = { cluster, book: this.#book, rpc, log: this.#log, phase: () => this.#phase, inUse: (space) => this.#inUse(space) };
    this.#requests = new OwnerRequests(this.#ctx);
    this.#reclaimer = new Reclaimer(
      {
        selfId: cluster.nodeId,
        roster: () => rosterSplit(cluster),
        addressOf: (id) => cluster.addressOf(id),
        ringSync: (address, request) => rpc.ringSync(address, request),
        knownRings: (gone) => this.#book.knownRings(gone),
        takeOver: (space, ringsOfAll, gone, inUse) => this.#takeOver(space, ringsOfAll, gone, inUse),
      },
      this.#log,
    );
  }

  static async start(options: { cluster: AllocationCluster; store: AllocationStore; logger: Logger; reclaimIntervalMs?: number }): Promise<AllocationService> {
    const service = new AllocationService(options.cluster, options.store, options.logger);
    service.#book.restoreAll();
    service.#unsubscribe = service.#rings.subscribe((published) => service.#book.onPublishedRing(published));
    service.#book.catchUp();
    try {
      await serveAllocRpc(options.cluster.libp2p, {
        selfId: options.cluster.nodeId,
        nodeIdOfPeer: (peer) => options.cluster.nodeIdOfPeer(peer),
        ...peerAnswers(service.#ctx),
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
    requireRunning(this.#phase);
    checkDefinition(space);
    this.#book.define(space, initialise);
  }

  /** The next free value of the space, asking owners for a share when this node has none. */
  allocate(space: string): Promise<number> {
    return this.#queue.run(space, () => this.#requests.obtain(space, undefined, (a, reachable) => a.allocate(reachable)));
  }

  /** A user-requested value (VNI, subnet); refused with `in-use` when any node holds it. */
  allocateValue(space: string, value: number): Promise<number> {
    return this.#queue.run(space, () => this.#requests.obtain(space, value, (a, reachable) => a.allocateValue(value, reachable)));
  }

  /** Returns a value to its owner's free space (forwarded when another node owns it now). */
  free(space: string, value: number): Promise<void> {
    return this.#queue.run(space, () => this.#requests.release(space, value));
  }

  /** The network is gone: forget its space here and withdraw this node's ring view. */
  drop(space: string): void {
    if (this.#book.drop(space)) this.#log.debug({ space }, 'dropped an allocation space');
  }

  /**
   * Graceful leave: hands every range this node owns, with the values still
   * in use, to a reachable member over /weft/alloc/1. The caller releases
   * node-local values (its endpoints' addresses) first. Afterwards the
   * service refuses new operations.
   */
  async leave(): Promise<LeaveReport> {
    requireRunning(this.#phase);
    this.#phase = 'leaving';
    const report: LeaveReport = { handedOver: [], kept: [] };
    try {
      for (const space of this.#book.names()) {
        await this.#queue.run(space, () => handOver(this.#ctx, space, report));
      }
    } finally {
      this.#phase = 'left';
    }
    if (report.kept.length > 0) this.#log.warn({ spaces: report.kept }, 'left with allocation ranges no member would take; they stay reserved for this node until it is removed (weft node rm) and reclaimed');
    return report;
  }

  stats(space: string): AllocatorStats | undefined {
    return this.#book.get(space)?.stats();
  }

  /** This node's view of a space's ring (tests, diagnostics). */
  ring(space: string): RingState | undefined {
    return this.#book.get(space)?.ring;
  }

  /** Spaces this node allocates from. */
  spaces(): string[] {
    return this.#book.names();
  }

  /** Ring merges refused as conflicting (never applied), for logs and `weft doctor`. */
  conflicts(): AllocationConflict[] {
    return this.#book.conflicts();
  }

  stop(): void {
    if (this.#phase === 'stopped') return;
    this.#phase = 'stopped';
    this.#reclaimer.stop();
    this.#unsubscribe?.();
    // The handler is removed synchronously; the returned promise only updates the peer store.
    this.#cluster.libp2p.unhandle(ALLOC_PROTOCOL).catch(() => undefined);
    this.#book.waiters.notifyAll();
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
      const bounds = rings[0] ?? this.#book.get(space)?.ring;
      if (!bounds) return 0;
      const allocator = this.#book.knownOrJoined(space, bounds.start, bounds.end);
      for (const ring of [...rings, ...this.#book.knownRings(gone).filter((r) => r.space === space)]) {
        const outcome = allocator.merge(ring);
        if (!outcome.ok) {
          // Never reclaim on top of a conflict: the ring is not what every member holds.
          this.#book.conflict(space, 'reclaim', 'sync', outcome.explanations);
          return 0;
        }
      }
      const keep = new Set([...inUse, ...ownInUse]);
      let taken = 0;
      for (const owner of goneOwners(allocator.ring, gone)) taken += allocator.reclaim(owner, keep);
      if (taken === 0) return 0;
      this.#book.set(allocator);
      this.#book.commit(allocator); // durable before anyone learns we own these ranges
      this.#book.waiters.notify(space);
      return taken;
    });
  }
}
