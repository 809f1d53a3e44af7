// One weft node's control plane as a pure object (in the spirit of raft's
// RawNode): failure detection (Membership), the replicated tables, the topic
// and scope rules (topics.ts), liveness-to-visibility and the coalescing of
// local writes, composed once. It is advanced by step(now, input) and
// tick(now) and answers with a Ready (ready.ts) that says what to persist,
// publish and send. The agent (agent/cluster/node-runner.ts) runs it over
// libp2p and timers; the simulator (controlplane/sim/tables-node.ts) runs
// the same object over its virtual network, so what the simulator measures
// is the production composition.
import { Membership } from '../membership/membership.ts';
import type { MembershipConfig } from '../membership/config.ts';
import type { ClaimSigning } from '../membership/claim-signing.ts';
import type { Effect, KnownMember } from '../membership/effects.ts';
import type { SwimMessage, Snapshot as SwimSnapshot } from '../membership/messages.ts';
import type { Rng } from '../membership/rng.ts';
import { ReplicatedTables } from '../tables/table.ts';
import { DEFAULT_REAP_MS } from '../tables/tables-config.ts';
import { Coalescer } from '../tables/coalescer.ts';
import { makeDigest, type Digest } from '../tables/digest.ts';
import { completeSync, diffAgainstDigest, type SyncReply } from '../tables/antientropy.ts';
import type { WireEntry } from '../tables/entry.ts';
import type { BatchResult } from '../tables/results.ts';
import { signedFields, type EntrySigner, type EntryVerifier } from '../tables/signing.ts';
import { reactionToMemberChange } from '../cluster/member-reactions.ts';
import { CLUSTER_TABLES, endpointsTable, isClusterScoped, isClusterTable, networkOfTable, networkTopic, topicAccepts, topicOfTable, CLUSTER_TABLE_TOPIC } from './topics.ts';
import { emptyReady, type Ready } from './ready.ts';

export interface NodeTiming {
  /**
   * The shortest gap between two flushes of local writes. A write after a
   * quiet gap goes out at once; writes made within coalesceMs of a flush wait
   * for the next one and share its gossip message.
   */
  coalesceMs: number;
  /** Cap on one gossip message (a message is signed once, whatever its size). */
  maxEntriesPerMessage: number;
  /** How often tombstones past the reap time are dropped; Infinity: never. */
  reapEveryMs: number;
}

export const DEFAULT_NODE_TIMING: Readonly<NodeTiming> = Object.freeze({ coalesceMs: 5, maxEntriesPerMessage: 2_000, reapEveryMs: 60_000 });

export interface NodeCoreOptions {
  self: { id: string; address: string };
  now: number;
  /** Membership's randomness: seeded from the OS by the agent, from the seed by the simulator. */
  rng: Rng;
  membership?: Partial<MembershipConfig>;
  claims: ClaimSigning;
  tables?: {
    initialLamport?: number;
    reapMs?: number;
    /** May entries owned by this node be accepted (roster: active or left)? */
    isAdmitted?: (nodeId: string) => boolean;
    sign?: EntrySigner;
    verify?: EntryVerifier;
  };
  timing?: Partial<NodeTiming>;
  /** Networks this node has endpoints on at start (their topics are subscribed). */
  networks?: Iterable<string>;
}

export type NodeInput =
  | { kind: 'swim'; from: string; message: SwimMessage }
  /** A gossip batch, `from` being the publisher's node ID; `dropped`: entries the decoder already refused. */
  | { kind: 'gossip'; from: string; topic: string; entries: readonly WireEntry[]; dropped?: number }
  | { kind: 'write'; table: string; key: string; value: Uint8Array }
  | { kind: 'delete'; table: string; key: string }
  | { kind: 'add-member'; member: KnownMember }
  | { kind: 'merge-snapshot'; snapshot: SwimSnapshot }
  | { kind: 'leave' }
  | { kind: 'join-network'; network: string }
  | { kind: 'leave-network'; network: string }
  /** Message 2 of /weft/sync/1 arrived for the digest we opened with; ready.syncClose is message 3. */
  | { kind: 'sync-reply'; from: string; digest: Digest; reply: SyncReply; dropped?: number }
  /** Message 3 of /weft/sync/1 arrived. */
  | { kind: 'sync-finish'; from: string; entries: readonly WireEntry[]; dropped?: number };

export class NodeCore {
  readonly id: string;
  readonly membership: Membership;
  readonly tables: ReplicatedTables;
  readonly timing: NodeTiming;
  readonly #networks = new Set<string>();
  readonly #coalescer = new Coalescer();
  /** When local writes were last flushed; -Infinity before the first. */
  #lastFlushAt = Number.NEGATIVE_INFINITY;
  #ready = emptyReady();
  #nextReapAt: number;

  constructor(options: NodeCoreOptions) {
    const { self, now } = options;
    this.id = self.id;
    this.timing = { ...DEFAULT_NODE_TIMING, ...options.timing };
    this.membership = new Membership({ self, config: options.membership ?? {}, rng: options.rng, now, claims: options.claims });
    const tables = options.tables ?? {};
    this.tables = new ReplicatedTables({
      self: self.id,
      initialLamport: tables.initialLamport ?? 0,
      reapMs: tables.reapMs ?? DEFAULT_REAP_MS,
      ...(tables.isAdmitted === undefined ? {} : { isAdmitted: tables.isAdmitted }),
      clusterScoped: isClusterScoped,
      ...(tables.sign === undefined ? {} : { sign: tables.sign }),
      ...(tables.verify === undefined ? {} : { verify: tables.verify }),
    });
    this.tables.subscribe(() => {
      this.#ready.persist = true;
    });
    for (const network of options.networks ?? []) this.#networks.add(network);
    this.#nextReapAt = this.#reapAfter(now);
  }

  #reapAfter(now: number): number {
    return Number.isFinite(this.timing.reapEveryMs) ? now + Math.min(this.timing.reapEveryMs, this.tables.reapMs) : Infinity;
  }

  /** Topics to subscribe at start: the cluster topic and those of the start networks. */
  topics(): string[] {
    return [CLUSTER_TABLE_TOPIC, ...[...this.#networks].map(networkTopic)];
  }

  /**
   * Reloads saved tables as a sync from ourselves: what the file holds came
   * from peers, so it is verified like anything received. Entries saved
   * unsigned (by an agent before owner signatures) are signed when they are
   * ours; anyone else's are refused and come back, signed, with a sync.
   */
  restore(now: number, saved: readonly WireEntry[], sign?: EntrySigner): BatchResult {
    const entries = sign === undefined ? saved : saved.map((e) => (e.owner === this.id && (e.signature === undefined || e.signature.length === 0) ? { ...e, signature: sign(signedFields(e)) } : e));
    const result = this.tables.applySynced(now, this.id, entries);
    this.#ready = emptyReady();
    return result;
  }

  step(now: number, input: NodeInput): Ready {
    switch (input.kind) {
      case 'swim':
        this.#route(now, this.membership.handle(now, input.from, input.message));
        break;
      case 'gossip':
        this.#gossip(now, input.from, input.topic, input.entries, input.dropped ?? 0);
        break;
      case 'write': {
        const write = this.tables.set(now, input.table, input.key, input.value);
        this.#queueWrite(now, write.entry);
        this.#ready.changes.push(...write.changes);
        break;
      }
      case 'delete': {
        const write = this.tables.delete(now, input.table, input.key);
        if (write === undefined) break;
        this.#queueWrite(now, write.entry);
        this.#ready.changes.push(...write.changes);
        break;
      }
      case 'add-member':
        this.#route(now, this.membership.addMember(now, input.member));
        break;
      case 'merge-snapshot':
        this.#route(now, this.membership.mergeSnapshot(now, input.snapshot));
        break;
      case 'leave':
        this.#route(now, this.membership.leave(now));
        break;
      case 'join-network':
        if (!this.#networks.has(input.network)) {
          this.#networks.add(input.network);
          this.#ready.subscribe.push(networkTopic(input.network));
        }
        break;
      case 'leave-network':
        if (this.#networks.delete(input.network)) {
          this.#ready.unsubscribe.push(networkTopic(input.network));
          this.#ready.changes.push(...this.tables.forgetOthersIn(endpointsTable(input.network)));
        }
        break;
      case 'sync-reply': {
        const keeps = this.#replicator();
        const reply = { ...input.reply, entries: input.reply.entries.filter((e) => keeps(e.table, e.owner)) };
        const { result, entries } = completeSync(now, this.tables, input.from, input.digest, reply);
        this.#applied(result, input.dropped ?? 0);
        this.#ready.syncClose = entries;
        break;
      }
      case 'sync-finish':
        this.#finish(now, input.from, input.entries, input.dropped ?? 0);
        break;
    }
    return this.#take();
  }

  /** Membership's timers, the coalesced flush and the tombstone reaper; call at nextDeadline(). */
  tick(now: number): Ready {
    if (this.membership.nextDeadline() <= now) this.#route(now, this.membership.tick(now));
    if (now >= this.#flushAt()) this.#flushWrites(now);
    if (now >= this.#nextReapAt) {
      this.tables.reap(now);
      this.#nextReapAt = this.#reapAfter(now);
    }
    return this.#take();
  }

  /** When tick() next has work; Infinity when idle. */
  nextDeadline(): number {
    return Math.min(this.membership.nextDeadline(), this.#flushAt(), this.#nextReapAt);
  }

  /**
   * Written as a sum, not a difference, so that a host waking at exactly this
   * time flushes. Pending writes wait until coalesceMs after the last flush
   * (never longer than coalesceMs: a write that finds the window over is
   * flushed at once): however fast writes come, a node sends at most one batch
   * per topic per coalesceMs (plus the message size cap), as when every write
   * waited the window.
   */
  #flushAt(): number {
    const first = this.#coalescer.firstPendingAt;
    return first === undefined ? Infinity : Math.max(first, this.#lastFlushAt + this.timing.coalesceMs);
  }

  /**
   * A write after a quiet gap (nothing pending, the last flush coalesceMs ago
   * or more) is flushed in this step's Ready: waiting would only add the
   * window to its propagation time, since nothing else is queued to share
   * the message. Writes that follow within the window are coalesced.
   */
  #queueWrite(now: number, entry: WireEntry): void {
    const quiet = this.#coalescer.size === 0 && now >= this.#lastFlushAt + this.timing.coalesceMs;
    this.#coalescer.add(now, entry);
    if (quiet) this.#flushWrites(now);
  }

  // ---- scope: which tables this node replicates ----

  networks(): string[] {
    return [...this.#networks];
  }

  /**
   * The cluster tables, the endpoints of this node's networks, and every
   * endpoints table it still owns entries in: a network it left holds its
   * tombstones (until reaped), which a peer that missed the delete gets only
   * by sync; and after a restart its own endpoints are in scope from the
   * first sync, before the overlay has rejoined their networks.
   */
  scope(): string[] {
    const tables = new Set<string>([...CLUSTER_TABLES, ...[...this.#networks].map(endpointsTable)]);
    for (const table of this.tables.tableNames()) if (this.#ownsEntriesIn(table)) tables.add(table);
    return [...tables];
  }

  inScope(table: string): boolean {
    if (isClusterTable(table)) return true;
    const network = networkOfTable(table);
    return network !== undefined && (this.#networks.has(network) || this.#ownsEntriesIn(table));
  }

  /**
   * Which owners' entries of `table` this node keeps, for one batch: everyone's
   * in the cluster tables, in its networks' tables, and where it still has a
   * live endpoint (a restarted agent before the overlay rejoins); only its own
   * (tombstones) in a network it left.
   */
  #replicator(): (table: string, owner: string) => boolean {
    const everyone = new Map<string, boolean>();
    return (table, owner) => {
      if (owner === this.id || isClusterTable(table)) return true;
      let keeps = everyone.get(table);
      if (keeps === undefined) {
        const network = networkOfTable(table);
        keeps = network !== undefined && (this.#networks.has(network) || this.tables.bucketEntries(table, this.id).some((e) => !e.deleted));
        everyone.set(table, keeps);
      }
      return keeps;
    };
  }

  #ownsEntriesIn(table: string): boolean {
    return networkOfTable(table) !== undefined && (this.tables.bucket(table, this.id)?.count ?? 0) > 0;
  }

  // ---- anti-entropy queries (message 1 and 2 of /weft/sync/1) ----

  digest(): Digest {
    return makeDigest(this.tables, this.scope());
  }

  answer(now: number, digest: Digest): SyncReply {
    return diffAgainstDigest(now, this.tables, digest, (table) => this.inScope(table));
  }

  // ---- internals ----

  #gossip(now: number, from: string, topic: string, entries: readonly WireEntry[], dropped: number): void {
    const keeps = this.#replicator();
    const fits = entries.filter((e) => topicAccepts(topic, e.table) && keeps(e.table, e.owner));
    this.#applied(this.tables.applyRemoteBatch(now, from, fits), dropped + entries.length - fits.length);
  }

  #finish(now: number, from: string, entries: readonly WireEntry[], dropped: number): void {
    // Our own entries come back from any table: answer() lists our bucket even outside our scope.
    const keeps = this.#replicator();
    const inScope = entries.filter((e) => keeps(e.table, e.owner));
    this.#applied(this.tables.applySynced(now, from, inScope), dropped + entries.length - inScope.length);
  }

  #applied(result: BatchResult, refusedBefore: number): void {
    this.#ready.refused += result.refused + refusedBefore;
    this.#ready.selfConflicts.push(...result.selfConflicts);
  }

  #flushWrites(now: number): void {
    this.#lastFlushAt = now;
    while (this.#coalescer.size > 0) {
      const byTopic = new Map<string, WireEntry[]>();
      for (const entry of this.#coalescer.take(this.timing.maxEntriesPerMessage)) {
        const topic = topicOfTable(entry.table);
        const list = byTopic.get(topic);
        if (list === undefined) byTopic.set(topic, [entry]);
        else list.push(entry);
      }
      for (const [topic, batch] of byTopic) this.#ready.publish.push({ topic, entries: batch });
    }
  }

  /** Membership's effects: sends go out; liveness decides visibility here, once, for every host. */
  #route(now: number, effects: readonly Effect[]): void {
    for (const effect of effects) {
      if (effect.kind === 'send') {
        this.#ready.send.push({ to: effect.to, address: effect.address, message: effect.message });
      } else if (effect.kind === 'member-changed') {
        const { member, previous } = effect;
        const reaction = reactionToMemberChange(member.state, previous);
        this.tables.setNodeLive(now, member.id, reaction.visible);
        this.#ready.memberChanges.push({ member, previous, reaction });
      } else {
        this.tables.forgetNode(effect.id);
        this.#ready.reaped.push(effect.id);
      }
    }
  }

  #take(): Ready {
    const ready = this.#ready;
    this.#ready = emptyReady();
    return ready;
  }
}
