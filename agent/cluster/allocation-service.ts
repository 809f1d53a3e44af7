// Hosts the ring allocators (controlplane/allocation) on the real cluster:
// each node publishes its view of every ring in the `allocations` table under
// its own key (LWW tables must never hold a CRDT under one shared key) and
// merges everyone else's; space requests and forwarded frees go over
// /weft/alloc/1; every change is persisted before the value is handed out.
import type { Logger } from 'pino';
import { Allocator, type FreeReply, type FreeRequest, type SpaceReply, type SpaceRequest } from '../../controlplane/allocation/index.ts';
import type { Change } from '../../controlplane/tables/index.ts';
import type { SpaceDefinition } from '../overlay/spaces.ts';
import { decodeRing, encodeRing } from '../wire/allocation-codec.ts';
import { registerAllocRpc, requestFree, requestSpace } from './allocation-rpc.ts';
import type { AllocationStore } from './allocation-store.ts';
import type { ClusterNode } from './cluster-node.ts';

const ALLOCATIONS_TABLE = 'allocations';
const MAX_ATTEMPTS = 6;
/** Right after a join the ring may still be on its way (next sync): wait a little, not forever. */
const NO_RING_WAIT_MS = 1_000;

export class AllocationError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
}

export class AllocationService {
  readonly #cluster: ClusterNode;
  readonly #store: AllocationStore;
  readonly #log: Logger;
  readonly #spaces = new Map<string, Allocator>();
  readonly #queues = new Map<string, Promise<unknown>>();
  #unsubscribe: (() => void) | undefined;

  private constructor(cluster: ClusterNode, store: AllocationStore, logger: Logger) {
    this.#cluster = cluster;
    this.#store = store;
    this.#log = logger.child({ component: 'allocation' });
  }

  static async start(options: { cluster: ClusterNode; store: AllocationStore; logger: Logger }): Promise<AllocationService> {
    const service = new AllocationService(options.cluster, options.store, options.logger);
    for (const space of options.store.spaces()) service.#restore(space);
    service.#unsubscribe = options.cluster.tables.subscribe((changes) => service.#onRings(changes), (table) => table === ALLOCATIONS_TABLE);
    await registerAllocRpc(options.cluster.libp2p, {
      nodeIdOfPeer: (peer) => options.cluster.nodeIdOfPeer(peer),
      onSpaceRequest: (request) => service.#serial(request.space, async () => service.#answerSpace(request)),
      onFreeRequest: (request) => service.#serial(request.space, async () => service.#answerFree(request)),
      onError: (error, peer) => service.#log.warn({ peer, err: error.message }, 'refused an allocation request'),
    });
    return service;
  }

  /** Declares a space. With `initialise`, this node owns all of it unless a ring is known already. */
  define(space: SpaceDefinition, initialise: boolean): void {
    if (this.#spaces.has(space.name)) return;
    const known = this.#ringsInTable(space.name);
    const allocator = initialise && known.length === 0
      ? Allocator.init(this.#cluster.nodeId, space.name, space.start, space.end)
      : Allocator.join(this.#cluster.nodeId, space.name, space.start, space.end);
    for (const ring of known) this.#merge(allocator, ring);
    this.#spaces.set(space.name, allocator);
    this.#commit(allocator);
  }

  allocate(space: string): Promise<number> {
    return this.#serial(space, () => this.#loop(space, (a) => a.allocate(this.#cluster.reachable())));
  }

  allocateValue(space: string, value: number): Promise<number> {
    return this.#serial(space, () => this.#loop(space, (a) => a.allocateValue(value, this.#cluster.reachable())));
  }

  free(space: string, value: number): Promise<void> {
    return this.#serial(space, async () => {
      const allocator = this.#require(space);
      const result = allocator.free(value, this.#cluster.reachable());
      if (result.kind === 'freed') return this.#commit(allocator);
      if (result.kind === 'failed') throw new AllocationError(result.error.code, result.error.message);
      const reply = await requestFree(this.#cluster.libp2p, this.#addressOf(result.request.to), result.request);
      if (reply.kind === 'refused') {
        this.#merge(allocator, reply.refusal.ring);
        throw new AllocationError(reply.refusal.reason, `${space} value ${value} could not be freed by its owner: ${reply.refusal.reason}`);
      }
    });
  }

  /** The space is gone with its network: forget it here and withdraw our ring view. */
  drop(space: string): void {
    this.#spaces.delete(space);
    this.#store.remove(space);
    this.#cluster.tables.delete(ALLOCATIONS_TABLE, `${space}|${this.#cluster.nodeId}`);
  }

  /**
   * Graceful leave. Handing ranges over needs a push of the donation to a
   * peer, which /weft/alloc/1 does not carry yet; until it does, a departed
   * node's ranges stay owned by it (values it handed out stay unique).
   */
  async leave(): Promise<void> {
    const owned = [...this.#spaces.values()].filter((a) => a.stats().owned > 0).map((a) => a.space);
    if (owned.length > 0) this.#log.warn({ spaces: owned }, 'leaving with owned allocation ranges; they stay reserved for this node');
  }

  stats(space: string): { owned: number; free: number; allocated: number } | undefined {
    const s = this.#spaces.get(space)?.stats();
    return s && { owned: s.owned, free: s.free, allocated: s.allocated };
  }

  stop(): void {
    this.#unsubscribe?.();
  }

  // ---- internals ----

  async #loop(space: string, attempt: (a: Allocator) => ReturnType<Allocator['allocate']>): Promise<number> {
    const allocator = this.#require(space);
    let lastError = 'no attempt made';
    for (let i = 0; i < MAX_ATTEMPTS; i++) {
      const result = attempt(allocator);
      if (result.kind === 'allocated') {
        this.#commit(allocator);
        return result.value;
      }
      if (result.kind === 'failed') {
        lastError = result.error.message;
        if (result.error.code !== 'no-ring' && result.error.code !== 'awaiting-handover') throw new AllocationError(result.error.code, result.error.message);
        await new Promise((resolve) => setTimeout(resolve, NO_RING_WAIT_MS));
        continue;
      }
      const reply = await this.#ask(result.request).catch((error: Error) => {
        throw new AllocationError('unreachable', `asking ${result.request.to.slice(0, 12)} for ${space} space failed (${error.message}); retry when it is reachable`);
      });
      const merged = allocator.receiveReply(reply);
      if (!merged.ok) this.#log.error({ space, explanations: merged.explanations }, 'refused a conflicting ring');
      this.#commit(allocator);
      if (reply.kind === 'refused' && reply.refusal.reason === 'in-use') {
        throw new AllocationError('in-use', `${space} value ${reply.refusal.value ?? ''} is in use already`);
      }
    }
    throw new AllocationError('gave-up', `could not allocate from ${space} after ${MAX_ATTEMPTS} attempts: ${lastError}`);
  }

  #ask(request: SpaceRequest): Promise<SpaceReply> {
    return requestSpace(this.#cluster.libp2p, this.#addressOf(request.to), request);
  }

  #answerSpace(request: SpaceRequest): SpaceReply {
    const allocator = this.#spaces.get(request.space) ?? this.#adopt(request.space);
    const reply = allocator.handleSpaceRequest(request);
    this.#commit(allocator);
    return reply;
  }

  #answerFree(request: FreeRequest): FreeReply {
    const allocator = this.#spaces.get(request.space) ?? this.#adopt(request.space);
    const reply = allocator.handleFreeRequest(request);
    this.#commit(allocator);
    return reply;
  }

  /** A request for a space this node has not declared (yet): learn it from the table. */
  #adopt(space: string): Allocator {
    const rings = this.#ringsInTable(space);
    const first = rings[0];
    if (!first) throw new Error(`unknown allocation space ${space}`);
    const allocator = Allocator.join(this.#cluster.nodeId, space, first.start, first.end);
    for (const ring of rings) this.#merge(allocator, ring);
    this.#spaces.set(space, allocator);
    return allocator;
  }

  #require(space: string): Allocator {
    const allocator = this.#spaces.get(space);
    if (!allocator) throw new AllocationError('unknown-space', `allocation space ${space} is not defined on this node`);
    return allocator;
  }

  #addressOf(nodeId: string): string {
    const address = this.#cluster.addressOf(nodeId);
    if (!address) throw new AllocationError('unreachable', `node ${nodeId.slice(0, 12)} is not an active member`);
    return address;
  }

  #restore(space: string): void {
    try {
      const saved = this.#store.load(space);
      if (saved) this.#spaces.set(space, Allocator.restore(this.#cluster.nodeId, saved.ring, saved.allocated));
    } catch (error) {
      this.#log.error({ space, err: (error as Error).message }, 'could not restore an allocation space; it starts empty and relearns the ring');
    }
  }

  #ringsInTable(space: string): ReturnType<typeof decodeRing>[] {
    const rings = [];
    for (const entry of this.#cluster.tables.tables.list(ALLOCATIONS_TABLE)) {
      if (!entry.key.startsWith(space + '|')) continue;
      try {
        rings.push(decodeRing(entry.value));
      } catch (error) {
        this.#log.warn({ key: entry.key, err: (error as Error).message }, 'ignored a malformed ring');
      }
    }
    return rings;
  }

  #onRings(changes: readonly Change[]): void {
    for (const change of changes) {
      if (change.op === 'remove' || change.entry.owner === this.#cluster.nodeId) continue;
      const space = change.key.slice(0, change.key.lastIndexOf('|'));
      const allocator = this.#spaces.get(space);
      if (!allocator) continue;
      try {
        if (this.#merge(allocator, decodeRing(change.entry.value))) this.#persist(allocator);
      } catch (error) {
        this.#log.warn({ key: change.key, err: (error as Error).message }, 'ignored a malformed ring');
      }
    }
  }

  #merge(allocator: Allocator, ring: ReturnType<typeof decodeRing>): boolean {
    const outcome = allocator.merge(ring);
    if (!outcome.ok) {
      this.#log.error({ space: allocator.space, explanations: outcome.explanations }, 'refused a conflicting ring');
      return false;
    }
    return outcome.changed;
  }

  /** Persist first, then publish: a value is never visible as taken before it is durable. */
  #commit(allocator: Allocator): void {
    this.#persist(allocator);
    if (allocator.ring.tokens.length > 0) {
      this.#cluster.tables.set(ALLOCATIONS_TABLE, `${allocator.space}|${this.#cluster.nodeId}`, encodeRing(allocator.ring));
    }
  }

  #persist(allocator: Allocator): void {
    this.#store.save(allocator.space, { ring: allocator.ring, allocated: allocator.allocated() });
  }

  /** One operation per space at a time, local or on behalf of a peer. */
  #serial<T>(space: string, operation: () => Promise<T>): Promise<T> {
    const previous = this.#queues.get(space) ?? Promise.resolve();
    const next = previous.then(operation, operation);
    this.#queues.set(space, next.catch(() => undefined));
    return next;
  }
}
