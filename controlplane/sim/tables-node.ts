// One simulated weft node: the REAL control-plane state machines
// (Membership, ReplicatedTables, Coalescer, the anti-entropy functions)
// wired the way the agent wires them (agent/cluster/table-service.ts,
// liveness.ts, state-sync.ts, cluster-node.ts), with the gossipsub MODEL of
// dissemination-gossipsub.ts standing in for libp2p gossipsub.
//
// What the host does here, as the agent does:
// - local writes go through the Coalescer and are published after
//   coalesceMs, one message per topic (cluster topic, one per network);
// - a received message is validated (validateMs: signature check and
//   decoding), applied with applyRemoteBatch(publisher) after dropping
//   entries that do not belong on its topic, then forwarded;
// - member-changed: alive or suspect -> setNodeLive(true), dead or left ->
//   setNodeLive(false); member-reaped -> forgetNode;
// - /weft/sync/1 on every outbound connection and every periodicSyncMs
//   with a random connected peer: open (membership snapshot + digest),
//   answer (snapshot after merging + SyncReply), finish (entries).
// The connections themselves are the cluster's (tables-cluster.ts), which
// calls connect()/disconnect().

import type { MembershipConfig } from '../membership/config.ts';
import type { Effect } from '../membership/effects.ts';
import type { MemberView } from '../membership/member-table.ts';
import { Membership } from '../membership/membership.ts';
import { UNSIGNED_CLAIMS } from '../membership/claim-signing.ts';
import type { MemberState } from '../membership/messages.ts';
import type { Rng } from '../membership/rng.ts';
import { deriveSeed, mulberry32, randomInt } from '../membership/rng.ts';
import { completeSync, diffAgainstDigest } from '../tables/antientropy.ts';
import { Coalescer } from '../tables/coalescer.ts';
import type { Digest } from '../tables/digest.ts';
import { makeDigest } from '../tables/digest.ts';
import { toWire } from '../tables/entry.ts';
import type { WireEntry } from '../tables/entry.ts';
import { ReplicatedTables } from '../tables/table.ts';
import type { GossipMessage, GossipsubParams, RouterSend } from './dissemination-gossipsub.ts';
import { GossipRouter } from './dissemination-gossipsub.ts';
import { EventQueue } from './event-queue.ts';
import type { Envelope, SimNode } from './simulator.ts';
import type { EntryBatchData, Sizer, TablesWire } from './tables-messages.ts';
import { TrafficCounter } from './tables-messages.ts';
import { CLUSTER_TABLES, CLUSTER_TOPIC, endpointsTable, isClusterScoped, networkOfTable, networkTopic, topicOfTable } from './tables-topics.ts';

/** The agent's timings, plus the modelled CPU costs of a gossipsub hop. */
export interface HostTiming {
  /** table-service.ts COALESCE_MS. */
  coalesceMs: number;
  /** table-service.ts MAX_ENTRIES_PER_MESSAGE. */
  maxEntriesPerMessage: number;
  /** Signing a message before it leaves (TOOLCHAIN.md: ~0.5 ms). */
  signMs: number;
  /** Receiving a first copy until it is applied and forwarded (decode, signature check, validator). */
  validateMs: number;
  /** cluster-node.ts PERIODIC_SYNC_MS; Infinity disables. */
  periodicSyncMs: number;
  /** Sync on every outbound connection (cluster-node.ts 'connection:open'). */
  syncOnConnect: boolean;
  /** state-sync.ts SYNC_TIMEOUT_MS: an exchange whose answer does not come is dropped. */
  syncTimeoutMs: number;
}

export const DEFAULT_HOST_TIMING: Readonly<HostTiming> = Object.freeze({
  coalesceMs: 5,
  maxEntriesPerMessage: 2_000,
  signMs: 0.5,
  validateMs: 1,
  periodicSyncMs: 30_000,
  syncOnConnect: true,
  syncTimeoutMs: 15_000,
});

export interface PersistedTables {
  lamport: number;
  entries: WireEntry[];
}

export interface TablesNodeOptions {
  id: string;
  address: string;
  now: number;
  /** This life's seed: membership, router and host draw from streams derived from it. */
  seed: number;
  /** Overlay networks this node has endpoints on (it subscribes to their topics). */
  networks: readonly string[];
  membership?: Partial<MembershipConfig>;
  gossipsub: GossipsubParams;
  timing: HostTiming;
  /** Tables saved before a restart (the agent's TableStore). */
  restored?: PersistedTables;
  sizer?: Sizer;
  onMemberChanged?: (now: number, observer: string, member: MemberView, previous: MemberState | null) => void;
}

export interface SyncCounters {
  started: number;
  answered: number;
  completed: number;
  finished: number;
  timedOut: number;
}

interface Deferred {
  at: number;
  seq: number;
  run: (now: number) => void;
}

interface PendingSync {
  peer: string;
  digest: Digest;
  expiresAt: number;
}

export class TablesSimNode implements SimNode<TablesWire> {
  readonly id: string;
  readonly membership: Membership;
  readonly tables: ReplicatedTables;
  readonly router: GossipRouter<EntryBatchData>;
  readonly networks: ReadonlySet<string>;
  readonly timing: HostTiming;
  readonly traffic = new TrafficCounter();
  readonly syncCounters: SyncCounters = { started: 0, answered: 0, completed: 0, finished: 0, timedOut: 0 };
  /** Scenario switch: periodic anti-entropy on or off (the timer keeps running). */
  periodicSync = true;
  readonly #coalescer = new Coalescer();
  readonly #deferred = new EventQueue<Deferred>();
  readonly #connections = new Map<string, boolean>();
  readonly #pending = new Map<string, PendingSync>();
  readonly #rng: Rng;
  readonly #sizer: Sizer | undefined;
  readonly #onMemberChanged: TablesNodeOptions['onMemberChanged'];
  #deferredSeq = 0;
  #exchangeSeq = 0;
  #nextSyncAt: number;
  #out: Envelope<TablesWire>[] = [];

  constructor(options: TablesNodeOptions) {
    const { id, now } = options;
    const stream = (n: number) => mulberry32(deriveSeed(options.seed, n));
    this.id = id;
    this.timing = options.timing;
    this.networks = new Set(options.networks);
    this.#sizer = options.sizer;
    this.#onMemberChanged = options.onMemberChanged;
    this.membership = new Membership({ self: { id, address: options.address }, config: options.membership ?? {}, rng: stream(0), now, claims: UNSIGNED_CLAIMS });
    this.tables = new ReplicatedTables({ self: id, initialLamport: options.restored?.lamport ?? 0, clusterScoped: isClusterScoped });
    // As TableService does on start-up: the saved entries go back in as a sync from ourselves.
    if (options.restored !== undefined) this.tables.applySynced(now, id, options.restored.entries);
    this.router = new GossipRouter(id, stream(1), options.gossipsub, now);
    this.router.subscribe(CLUSTER_TOPIC);
    for (const network of this.networks) this.router.subscribe(networkTopic(network));
    this.#rng = stream(2);
    const period = this.timing.periodicSyncMs;
    this.#nextSyncAt = Number.isFinite(period) ? now + randomInt(this.#rng, period) + 1 : Infinity;
  }

  /** Tables this node replicates: the cluster tables and the endpoints of its networks. */
  scope(): string[] {
    return [...CLUSTER_TABLES, ...[...this.networks].map(endpointsTable)];
  }

  inScope(table: string): boolean {
    if (CLUSTER_TABLES.includes(table)) return true;
    const network = networkOfTable(table);
    return network !== undefined && this.networks.has(network);
  }

  connections(): string[] {
    return [...this.#connections.keys()];
  }

  isConnected(peer: string): boolean {
    return this.#connections.has(peer);
  }

  // ---- SimNode ------------------------------------------------------------

  handle(now: number, from: string, message: TablesWire): Envelope<TablesWire>[] {
    switch (message.kind) {
      case 'swim':
        this.#route(now, this.membership.handle(now, from, message.message));
        break;
      case 'gossipsub': {
        if (!this.#connections.has(from)) break;
        const { sends, fresh } = this.router.handle(now, from, message.rpc);
        this.#sendRpcs(sends);
        for (const copy of fresh) this.#later(now, this.timing.validateMs, (t) => this.#deliver(t, copy, from));
        break;
      }
      case 'sync-open': {
        // The responder merges the initiator's snapshot before answering (state-sync.ts).
        this.#route(now, this.membership.mergeSnapshot(now, message.snapshot));
        const reply = diffAgainstDigest(now, this.tables, message.digest, (table) => this.inScope(table));
        this.syncCounters.answered += 1;
        this.#send(from, { kind: 'sync-answer', exchange: message.exchange, snapshot: this.membership.snapshot(), reply });
        break;
      }
      case 'sync-answer': {
        const pending = this.#pending.get(message.exchange);
        if (pending === undefined || pending.peer !== from) break;
        this.#pending.delete(message.exchange);
        this.#route(now, this.membership.mergeSnapshot(now, message.snapshot));
        const { entries } = completeSync(now, this.tables, from, pending.digest, message.reply);
        this.syncCounters.completed += 1;
        this.#send(from, { kind: 'sync-finish', exchange: message.exchange, entries });
        break;
      }
      case 'sync-finish':
        this.tables.applySynced(now, from, message.entries.filter((e) => this.inScope(e.table)));
        this.syncCounters.finished += 1;
        break;
    }
    return this.#flush();
  }

  tick(now: number): Envelope<TablesWire>[] {
    for (let next = this.#deferred.peek(); next !== undefined && next.at <= now; next = this.#deferred.peek()) {
      this.#deferred.pop();
      next.run(now);
    }
    if (this.membership.nextDeadline() <= now) this.#route(now, this.membership.tick(now));
    const first = this.#coalescer.firstPendingAt;
    if (first !== undefined && now >= first + this.timing.coalesceMs) this.#flushGossip(now);
    if (now >= this.router.nextHeartbeatAt) this.#sendRpcs(this.router.heartbeat(now));
    if (now >= this.#nextSyncAt) this.#periodic(now);
    return this.#flush();
  }

  nextWakeAt(): number {
    let at = Math.min(this.membership.nextDeadline(), this.router.nextHeartbeatAt, this.#nextSyncAt);
    const first = this.#coalescer.firstPendingAt;
    if (first !== undefined) at = Math.min(at, first + this.timing.coalesceMs);
    const deferred = this.#deferred.peek();
    if (deferred !== undefined) at = Math.min(at, deferred.at);
    return at;
  }

  // ---- the host's calls (through Simulator.invoke) ------------------------

  write(now: number, table: string, key: string, value: Uint8Array): Envelope<TablesWire>[] {
    this.#coalescer.add(now, this.tables.set(now, table, key, value).entry);
    return this.#flush();
  }

  remove(now: number, table: string, key: string): Envelope<TablesWire>[] {
    const write = this.tables.delete(now, table, key);
    if (write !== undefined) this.#coalescer.add(now, write.entry);
    return this.#flush();
  }

  /** A connection opened. `topics`: the peer's subscriptions, exchanged on connect. */
  connect(now: number, peer: string, topics: Iterable<string>, outbound: boolean, sync = this.timing.syncOnConnect): Envelope<TablesWire>[] {
    this.#connections.set(peer, outbound);
    this.router.addPeer(peer, topics, outbound);
    if (outbound && sync) this.#startSync(now, peer);
    return this.#flush();
  }

  disconnect(_now: number, peer: string): Envelope<TablesWire>[] {
    this.#connections.delete(peer);
    this.router.removePeer(peer);
    return this.#flush();
  }

  /** Opens a /weft/sync/1 exchange with `peer` (message 1). */
  startSync(now: number, peer: string): Envelope<TablesWire>[] {
    this.#startSync(now, peer);
    return this.#flush();
  }

  /** What the agent's TableStore would hold: every stored entry and the Lamport time. */
  persisted(now: number): PersistedTables {
    const entries = this.tables.tableNames().flatMap((table) => this.tables.stored(table).map((e) => toWire(e, now)));
    return { lamport: this.tables.lamport, entries };
  }

  // ---- internals ----------------------------------------------------------

  #startSync(now: number, peer: string): void {
    this.#exchangeSeq += 1;
    const exchange = `${this.id}/${this.#exchangeSeq}`;
    const digest = makeDigest(this.tables, this.scope());
    this.#pending.set(exchange, { peer, digest, expiresAt: now + this.timing.syncTimeoutMs });
    this.syncCounters.started += 1;
    this.#send(peer, { kind: 'sync-open', exchange, snapshot: this.membership.snapshot(), digest });
  }

  #periodic(now: number): void {
    this.#nextSyncAt = now + this.timing.periodicSyncMs;
    for (const [id, pending] of this.#pending) {
      if (pending.expiresAt > now) continue;
      this.#pending.delete(id);
      this.syncCounters.timedOut += 1;
    }
    if (!this.periodicSync || this.#connections.size === 0) return;
    const peers = [...this.#connections.keys()];
    this.#startSync(now, peers[randomInt(this.#rng, peers.length)] as string);
  }

  #flushGossip(now: number): void {
    while (this.#coalescer.size > 0) {
      const byTopic = new Map<string, WireEntry[]>();
      for (const entry of this.#coalescer.take(this.timing.maxEntriesPerMessage)) {
        const topic = topicOfTable(entry.table);
        const list = byTopic.get(topic);
        if (list === undefined) byTopic.set(topic, [entry]);
        else list.push(entry);
      }
      for (const [topic, entries] of byTopic) {
        this.#later(now, this.timing.signMs, (t) => this.#sendRpcs(this.router.publish(t, topic, entries).sends));
      }
    }
  }

  /** A validated first copy: apply what belongs on its topic, then forward. */
  #deliver(now: number, message: GossipMessage<EntryBatchData>, source: string): void {
    const fits = message.data.filter((e) => topicOfTable(e.table) === message.topic);
    this.tables.applyRemoteBatch(now, message.from, fits);
    this.#sendRpcs(this.router.accept(message, source));
  }

  #route(now: number, effects: readonly Effect[]): void {
    for (const effect of effects) {
      if (effect.kind === 'send') {
        this.#send(effect.to, { kind: 'swim', message: effect.message });
      } else if (effect.kind === 'member-changed') {
        const { member, previous } = effect;
        // Exactly the agent's rule (cluster-node.ts): alive or suspect is live.
        if (member.id !== this.id) this.tables.setNodeLive(now, member.id, member.state === 'alive' || member.state === 'suspect');
        this.#onMemberChanged?.(now, this.id, member, previous);
      } else {
        this.tables.forgetNode(effect.id);
      }
    }
  }

  #later(now: number, delayMs: number, run: (now: number) => void): void {
    if (delayMs <= 0) {
      run(now);
      return;
    }
    this.#deferred.push({ at: now + delayMs, seq: this.#deferredSeq++, run });
  }

  #sendRpcs(sends: readonly RouterSend<EntryBatchData>[]): void {
    for (const { to, rpc } of sends) this.#send(to, { kind: 'gossipsub', rpc });
  }

  #send(to: string, message: TablesWire): void {
    this.traffic.add(message, this.#sizer?.(message));
    this.#out.push({ to, message });
  }

  #flush(): Envelope<TablesWire>[] {
    const out = this.#out;
    this.#out = [];
    return out;
  }
}
