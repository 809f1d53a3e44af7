// Hosts the replicated tables on the real transport: local writes are
// coalesced for a few milliseconds and published on the table's gossipsub
// topic; received batches are applied with the publisher as origin; liveness
// verdicts hide and restore a node's entries; the store is persisted so a
// cluster-wide restart loses nothing.
import { TopicValidatorResult, type Message } from '@libp2p/gossipsub';
import type { Logger } from 'pino';
import {
  ReplicatedTables, Coalescer, makeDigest, diffAgainstDigest, completeSync, toWire,
  signedFields,
  DEFAULT_REAP_MS,
  type BatchResult, type Change, type ChangeListener, type Digest, type Entry, type SyncReply, type WireEntry, type TableFilter, type EntrySigner, type EntryVerifier,
} from '../../controlplane/tables/index.ts';
import type { WeftLibp2p } from './libp2p-node.ts';
import { DeferredSave } from '../daemon/deferred-save.ts';
import { decodeEntryBatch, encodeEntryBatch } from '../wire/tables-codec.ts';
import { CLUSTER_TABLES, CLUSTER_TABLE_TOPIC, endpointsTable, isClusterTable, networkOfTable, networkOfTopic, networkTopic, topicOfTable } from './table-topics.ts';

const COALESCE_MS = 5;
const MAX_ENTRIES_PER_MESSAGE = 2_000;
const REAP_INTERVAL_MS = 60_000;
const PERSIST_DELAY_MS = 200;

export interface TableStore {
  load(): { lamport: number; entries: WireEntry[] } | undefined;
  save(lamport: number, entries: WireEntry[]): void;
}

export interface TableServiceOptions {
  node: WeftLibp2p;
  selfId: string;
  logger: Logger;
  store: TableStore;
  /** Node ID of an admitted peer, undefined otherwise. */
  nodeIdOfPeer: (peerId: string) => string | undefined;
  /** May entries owned by this node be accepted (has an unrevoked certificate)? */
  isAdmittedOwner: (nodeId: string) => boolean;
  /** Signs this node's writes with its node key (owner-keys.ts). */
  sign: EntrySigner;
  /** Checks an owner's signature on every received version, on every path (reload included). */
  verify: EntryVerifier;
  /** How long a delete is remembered (tombstone reap time); default 30 min. */
  reapMs?: number;
}

/** This node's own entries that a peer held in a version this node did not (see ownEntriesAdopted). */
export type OwnEntriesListener = (entries: Entry[]) => void;

export class TableService {
  readonly tables: ReplicatedTables;
  readonly #options: TableServiceOptions;
  readonly #log: Logger;
  readonly #pending = new Coalescer();
  readonly #networks = new Set<string>();
  #flushTimer: NodeJS.Timeout | undefined;
  readonly #deferredSave = new DeferredSave(PERSIST_DELAY_MS, () => this.persist());
  #reapTimer: NodeJS.Timeout | undefined;
  #stopped = false;
  readonly #ownEntriesListeners = new Set<OwnEntriesListener>();

  constructor(options: TableServiceOptions) {
    this.#options = options;
    this.#log = options.logger.child({ component: 'tables' });
    const saved = options.store.load();
    this.tables = new ReplicatedTables({
      self: options.selfId,
      initialLamport: saved?.lamport ?? 0,
      reapMs: options.reapMs ?? DEFAULT_REAP_MS,
      isAdmitted: options.isAdmittedOwner,
      // Networks and services belong to the cluster, not to the host that created them.
      clusterScoped: (table) => table === 'networks' || table === 'services',
      sign: options.sign,
      verify: options.verify,
    });
    if (saved) this.#restore(saved.entries);
    this.tables.subscribe(() => this.#schedulePersist());
    const pubsub = options.node.services.pubsub;
    pubsub.addEventListener('message', (event) => this.#onMessage(event.detail));
    this.#subscribe(CLUSTER_TABLE_TOPIC);
    this.#reapTimer = setInterval(() => this.tables.reap(Date.now()), Math.min(REAP_INTERVAL_MS, this.tables.reapMs));
  }

  /**
   * Reloaded entries are verified like received ones: the file is ours, but
   * what it holds came from peers. Agents before owner signatures saved
   * entries unsigned: our own are signed now (they are ours by definition,
   * and peers need the signature to accept them), anyone else's are dropped
   * and come back, signed by their owner, with the next sync.
   */
  #restore(saved: WireEntry[]): void {
    const entries = saved.map((e) =>
      e.owner === this.#options.selfId && (e.signature === undefined || e.signature.length === 0) ? { ...e, signature: this.#options.sign(signedFields(e)) } : e,
    );
    const result = this.tables.applySynced(Date.now(), this.#options.selfId, entries);
    if (result.refused > 0) this.#log.warn({ refused: result.refused, counters: this.tables.counters }, 'left out saved table entries that are not signed by their owner; sync brings back the genuine ones');
  }

  subscribe(listener: ChangeListener, filter?: TableFilter): () => void {
    return this.tables.subscribe(listener, filter);
  }

  /**
   * Called with this node's own entries that a peer handed back in a version
   * this node did not hold: typically an entry this node deleted while that
   * peer was away for longer than the reap time, so the tombstone is gone.
   * The tables adopt them (only the owner could have signed them); the
   * consumer that knows the truth for the table (the overlay for endpoints)
   * writes the current value again or deletes the key anew.
   */
  ownEntriesAdopted(listener: OwnEntriesListener): () => void {
    this.#ownEntriesListeners.add(listener);
    return () => this.#ownEntriesListeners.delete(listener);
  }

  #afterApply(result: BatchResult): void {
    if (result.selfConflicts.length === 0) return;
    for (const listener of this.#ownEntriesListeners) listener(result.selfConflicts);
  }

  set(table: string, key: string, value: Uint8Array): Change[] {
    const write = this.tables.set(Date.now(), table, key, value);
    this.#queue(write.entry);
    return write.changes;
  }

  delete(table: string, key: string): Change[] {
    const write = this.tables.delete(Date.now(), table, key);
    if (!write) return [];
    this.#queue(write.entry);
    return write.changes;
  }

  /** Membership verdicts: dead or left hides a node's entries, alive restores them. */
  setNodeLive(nodeId: string, live: boolean): void {
    this.tables.setNodeLive(Date.now(), nodeId, live);
  }

  /** After the reap time a dead node's entries are dropped for good. */
  forgetNode(nodeId: string): void {
    this.tables.forgetNode(nodeId);
  }

  // ---- per-network topics ----

  /** Called when the first local endpoint appears on a network. */
  joinNetwork(networkId: string): void {
    if (this.#networks.has(networkId)) return;
    this.#networks.add(networkId);
    this.#subscribe(networkTopic(networkId));
  }

  /** Called when the last local endpoint leaves: stop receiving that network's traffic. */
  leaveNetwork(networkId: string): void {
    if (!this.#networks.delete(networkId)) return;
    this.#options.node.services.pubsub.unsubscribe(networkTopic(networkId));
  }

  networks(): string[] {
    return [...this.#networks];
  }

  /**
   * Tables this node replicates: the cluster tables, the endpoints of its
   * networks, and every endpoints table it still owns entries in. The last
   * covers two cases: a network it left holds its tombstones (until reaped),
   * which a peer that missed the delete, down or cut off at the time, gets
   * only by sync; and after a restart its own endpoints are in scope from the
   * first sync, before the overlay has rejoined their networks.
   */
  scope(): string[] {
    const tables = new Set([...CLUSTER_TABLES, ...[...this.#networks].map(endpointsTable)]);
    for (const table of this.tables.tableNames()) if (this.#ownsEntriesIn(table)) tables.add(table);
    return [...tables];
  }

  #inScope(table: string): boolean {
    if (isClusterTable(table)) return true;
    const network = networkOfTable(table);
    return network !== undefined && (this.#networks.has(network) || this.#ownsEntriesIn(table));
  }

  #ownsEntriesIn(table: string): boolean {
    return networkOfTable(table) !== undefined && (this.tables.bucket(table, this.#options.selfId)?.count ?? 0) > 0;
  }

  #subscribe(topic: string): void {
    const pubsub = this.#options.node.services.pubsub;
    pubsub.topicValidators.set(topic, (_peer, message: Message) =>
      message.type === 'signed' && this.#options.nodeIdOfPeer(message.from.toString()) ? TopicValidatorResult.Accept : TopicValidatorResult.Reject,
    );
    pubsub.subscribe(topic);
  }

  // ---- anti-entropy (the three messages of /weft/sync/1) ----

  digest(): Digest {
    return makeDigest(this.tables, this.scope());
  }

  answer(digest: Digest): SyncReply {
    return diffAgainstDigest(Date.now(), this.tables, digest, (table) => this.#inScope(table));
  }

  complete(peerNodeId: string, digest: Digest, reply: SyncReply & { dropped?: number }): WireEntry[] {
    const { result, entries } = completeSync(Date.now(), this.tables, peerNodeId, digest, reply);
    this.#reportRefusals(peerNodeId, result.refused + (reply.dropped ?? 0), 'sync');
    this.#afterApply(result);
    return entries;
  }

  finish(peerNodeId: string, entries: WireEntry[], dropped = 0): void {
    // Our own entries come back from any table: answer() lists our bucket even outside our scope.
    const inScope = entries.filter((e) => this.#inScope(e.table) || e.owner === this.#options.selfId);
    const result = this.tables.applySynced(Date.now(), peerNodeId, inScope);
    this.#reportRefusals(peerNodeId, result.refused + dropped + entries.length - inScope.length, 'sync');
    this.#afterApply(result);
  }

  // ---- gossip ----

  #queue(entry: WireEntry): void {
    this.#pending.add(Date.now(), entry);
    this.#flushTimer ??= setTimeout(() => this.#flush(), COALESCE_MS);
  }

  #flush(): void {
    this.#flushTimer = undefined;
    if (this.#stopped) return;
    while (this.#pending.size > 0) {
      const byTopic = new Map<string, WireEntry[]>();
      for (const entry of this.#pending.take(MAX_ENTRIES_PER_MESSAGE)) {
        const topic = topicOfTable(entry.table);
        byTopic.set(topic, [...(byTopic.get(topic) ?? []), entry]);
      }
      for (const [topic, entries] of byTopic) {
        this.#options.node.services.pubsub
          .publish(topic, encodeEntryBatch(entries))
          .catch((error: Error) => this.#log.debug({ topic, err: error.message }, 'publish failed; anti-entropy will deliver'));
      }
    }
  }

  #onMessage(message: Message): void {
    const network = networkOfTopic(message.topic);
    if (message.topic !== CLUSTER_TABLE_TOPIC && network === undefined) return;
    if (message.type !== 'signed') return;
    const from = this.#options.nodeIdOfPeer(message.from.toString());
    if (!from) return;
    let decoded: { entries: WireEntry[]; dropped: number };
    try {
      decoded = decodeEntryBatch(message.data);
    } catch (error) {
      this.#log.warn({ from, err: (error as Error).message }, 'refused a table batch');
      return;
    }
    const { entries, dropped } = decoded;
    // A topic carries only its own tables: an endpoint entry on the cluster topic is refused.
    const fits = entries.filter((e) => (network === undefined ? isClusterTable(e.table) : networkOfTable(e.table) === network));
    const result = this.tables.applyRemoteBatch(Date.now(), from, fits);
    this.#reportRefusals(from, result.refused + dropped + entries.length - fits.length, 'gossip');
    this.#afterApply(result);
  }

  #reportRefusals(from: string, refused: number, path: string): void {
    if (refused > 0) this.#log.warn({ from, refused, path, counters: this.tables.counters }, 'refused table entries');
  }

  // ---- persistence ----

  #schedulePersist(): void {
    this.#deferredSave.schedule();
  }

  persist(): void {
    const now = Date.now();
    const entries = this.tables.tableNames().flatMap((t) => this.tables.stored(t).map((e) => toWire(e, now)));
    try {
      this.#options.store.save(this.tables.lamport, entries);
    } catch (error) {
      this.#log.error({ err: (error as Error).message }, 'could not save tables');
    }
  }

  stop(): void {
    this.#stopped = true;
    if (this.#flushTimer) clearTimeout(this.#flushTimer);
    if (this.#reapTimer) clearInterval(this.#reapTimer);
    this.#deferredSave.flush();
  }
}
