// One simulated weft node: the agent's node core (controlplane/node/
// node-core.ts: Membership, ReplicatedTables, topic and scope rules,
// liveness-to-visibility, coalescing) run over the simulator, with the
// gossipsub MODEL of dissemination-gossipsub.ts standing in for libp2p
// gossipsub. This file only carries the core's Ready over the virtual
// network, as agent/cluster/node-runner.ts carries it over libp2p:
// - publications are signed (signMs) and handed to the router;
// - a received first copy is validated (validateMs: signature check and
//   decoding), stepped into the core as gossip from its publisher (the core
//   drops entries that do not belong on the topic), then forwarded;
// - /weft/sync/1 on every outbound connection and every periodicSyncMs
//   with a random connected peer: open (membership snapshot + digest),
//   answer (snapshot after merging + SyncReply), finish (entries). The
//   periodic round is a digest round, as the agent's: the hash of the
//   liveness view stands in for the snapshot each way, and a full round
//   follows only when the hashes differ.
// - the core's member reactions, as cluster-node.ts carries them out: a sync
//   with a member back from dead (on the open connection, if any), and a
//   dead member's connections dropped, which the cluster does
//   (onDropConnections) since the connections are its (tables-cluster.ts).
// - the roster (sim-roster.ts): the agent's record intake and rules on the
//   member records that come by gossip on the cluster topic and by sync; only
//   active members may speak SWIM, publish or connect, and entries count
//   only from active or left members, as in the agent.

import type { Membership } from '../membership/membership.ts';
import { UNSIGNED_CLAIMS } from '../membership/claim-signing.ts';
import type { Rng } from '../membership/rng.ts';
import { deriveSeed, mulberry32, randomInt } from '../membership/rng.ts';
import type { Digest } from '../tables/digest.ts';
import { toWire } from '../tables/entry.ts';
import type { ReplicatedTables } from '../tables/table.ts';
import { NodeCore } from '../node/node-core.ts';
import { sameDigests, syncDigests, type SyncDigests } from '../cluster/sync-digest.ts';
import { recordsNewerThan, summaryOf, type MemberRecord, type MemberSummary } from '../cluster/roster.ts';
import type { RecordOrigin } from '../cluster/record-intake.ts';
import { CLUSTER_RECORD_TOPIC } from '../node/topics.ts';
import { SimRoster } from './sim-roster.ts';
import { deliverReady, type Ready } from '../node/ready.ts';
import type { GossipMessage, RouterSend } from './dissemination-gossipsub.ts';
import { GossipRouter } from './dissemination-gossipsub.ts';
import { EventQueue } from './event-queue.ts';
import type { Envelope, SimNode } from './simulator.ts';
import type { GossipData, Sizer, TablesWire } from './tables-messages.ts';
import { isRecordBatch, TrafficCounter } from './tables-messages.ts';
import type { HostTiming, PersistedTables, SyncCounters, SyncMode, TablesNodeOptions } from './tables-node-config.ts';

export { DEFAULT_HOST_TIMING } from './tables-node-config.ts';
export type { HostTiming, PersistedTables, SyncCounters, SyncMode, TablesNodeOptions } from './tables-node-config.ts';

interface Deferred {
  at: number;
  seq: number;
  run: (now: number) => void;
}

interface PendingSync {
  peer: string;
  digest: Digest;
  mode: SyncMode;
  expiresAt: number;
}

export class TablesSimNode implements SimNode<TablesWire> {
  readonly id: string;
  readonly core: NodeCore;
  readonly router: GossipRouter<GossipData>;
  readonly members: SimRoster;
  readonly timing: HostTiming;
  readonly traffic = new TrafficCounter();
  readonly syncCounters: SyncCounters = { started: 0, answered: 0, completed: 0, finished: 0, timedOut: 0 };
  /** Member records refused, and why, oldest first (the agent logs these). */
  readonly refusedRecords: string[] = [];
  /** Scenario switch: periodic anti-entropy on or off (the timer keeps running). */
  periodicSync = true;
  readonly #deferred = new EventQueue<Deferred>();
  readonly #connections = new Map<string, boolean>();
  readonly #pending = new Map<string, PendingSync>();
  readonly #rng: Rng;
  readonly #sizer: Sizer | undefined;
  readonly #onMemberChanged: TablesNodeOptions['onMemberChanged'];
  readonly #onDropConnections: TablesNodeOptions['onDropConnections'];
  readonly #onMemberInactive: TablesNodeOptions['onMemberInactive'];
  readonly #onRevoked: TablesNodeOptions['onRevoked'];
  #deferredSeq = 0;
  #exchangeSeq = 0;
  #nextSyncAt: number;
  #out: Envelope<TablesWire>[] = [];

  constructor(options: TablesNodeOptions) {
    const { id, now } = options;
    const stream = (n: number) => mulberry32(deriveSeed(options.seed, n));
    this.id = id;
    this.timing = options.timing;
    this.#sizer = options.sizer;
    this.#onMemberChanged = options.onMemberChanged;
    this.#onDropConnections = options.onDropConnections;
    this.#onMemberInactive = options.onMemberInactive;
    this.#onRevoked = options.onRevoked;
    this.members = new SimRoster(id, options.records);
    this.core = new NodeCore({
      self: { id, address: options.address },
      now,
      rng: stream(0),
      ...(options.membership === undefined ? {} : { membership: options.membership }),
      claims: UNSIGNED_CLAIMS,
      tables: { initialLamport: options.restored?.lamport ?? 0, isAdmitted: (owner) => this.members.roster.admitsEntriesOf(owner) },
      timing: { coalesceMs: this.timing.coalesceMs, maxEntriesPerMessage: this.timing.maxEntriesPerMessage },
      networks: options.networks,
    });
    // As the agent does on start-up: the saved entries go back in as a sync from ourselves.
    if (options.restored !== undefined) this.core.restore(now, options.restored.entries);
    this.router = new GossipRouter(id, stream(1), options.gossipsub, now);
    for (const topic of [...this.core.topics(), CLUSTER_RECORD_TOPIC]) this.router.subscribe(topic);
    this.#rng = stream(2);
    const period = this.timing.periodicSyncMs;
    this.#nextSyncAt = Number.isFinite(period) ? now + randomInt(this.#rng, period) + 1 : Infinity;
  }

  get membership(): Membership {
    return this.core.membership;
  }

  get tables(): ReplicatedTables {
    return this.core.tables;
  }

  get networks(): ReadonlySet<string> {
    return new Set(this.core.networks());
  }

  scope(): string[] {
    return this.core.scope();
  }

  inScope(table: string): boolean {
    return this.core.inScope(table);
  }

  connections(): string[] {
    return [...this.#connections.keys()];
  }

  isConnected(peer: string): boolean {
    return this.#connections.has(peer);
  }

  /** Whether this node dialled its open connection to `peer` (undefined: none open). */
  dialled(peer: string): boolean | undefined {
    return this.#connections.get(peer);
  }

  // ---- SimNode ------------------------------------------------------------

  handle(now: number, from: string, message: TablesWire): Envelope<TablesWire>[] {
    switch (message.kind) {
      case 'swim':
        // Only an active member's key speaks on SWIM (agent/cluster/member-node-runner.ts verifyMember).
        if (this.members.isActive(from)) this.#run(now, this.core.step(now, { kind: 'swim', from, message: message.message }));
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
        if (message.snapshot !== undefined) this.#run(now, this.core.step(now, { kind: 'merge-snapshot', snapshot: message.snapshot }));
        const reply = this.core.answer(now, message.digest);
        this.syncCounters.answered += 1;
        const members = this.#recordsFor(message.summary);
        const membership = message.snapshot === undefined ? this.#digests() : { snapshot: this.membership.snapshot(), summary: this.#summary() };
        this.#send(from, { kind: 'sync-answer', exchange: message.exchange, reply, members, ...membership });
        break;
      }
      case 'sync-answer': {
        const pending = this.#pending.get(message.exchange);
        if (pending === undefined || pending.peer !== from) break;
        this.#pending.delete(message.exchange);
        this.#takeRecords(now, message.members, { kind: 'sync', senderId: from });
        if (message.snapshot !== undefined) this.#run(now, this.core.step(now, { kind: 'merge-snapshot', snapshot: message.snapshot }));
        const ready = this.core.step(now, { kind: 'sync-reply', from, digest: pending.digest, reply: message.reply });
        this.#run(now, ready);
        this.syncCounters.completed += 1;
        this.#send(from, { kind: 'sync-finish', exchange: message.exchange, entries: ready.syncClose, members: this.#recordsFor(message.summary) });
        // The views differ: exchange them now, not at the next periodic round (sync-scheduler.ts).
        const differs = pending.mode === 'digest' && !sameDigests(this.#digests(), message);
        if (differs && this.#connections.has(from)) this.#startSync(now, from, 'full');
        break;
      }
      case 'sync-finish':
        this.#takeRecords(now, message.members, { kind: 'sync', senderId: from });
        this.#run(now, this.core.step(now, { kind: 'sync-finish', from, entries: message.entries }));
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
    if (this.core.nextDeadline() <= now) this.#run(now, this.core.tick(now));
    if (now >= this.router.nextHeartbeatAt) this.#sendRpcs(this.router.heartbeat(now));
    if (now >= this.#nextSyncAt) this.#periodic(now);
    return this.#flush();
  }

  nextWakeAt(): number {
    let at = Math.min(this.core.nextDeadline(), this.router.nextHeartbeatAt, this.#nextSyncAt);
    const deferred = this.#deferred.peek();
    if (deferred !== undefined) at = Math.min(at, deferred.at);
    return at;
  }

  // ---- the host's calls (through Simulator.invoke) ------------------------

  write(now: number, table: string, key: string, value: Uint8Array): Envelope<TablesWire>[] {
    this.#run(now, this.core.step(now, { kind: 'write', table, key, value }));
    return this.#flush();
  }

  remove(now: number, table: string, key: string): Envelope<TablesWire>[] {
    this.#run(now, this.core.step(now, { kind: 'delete', table, key }));
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

  /** Opens a /weft/sync/1 exchange with `peer` (message 1); `digest`: as the periodic round does. */
  startSync(now: number, peer: string, mode: SyncMode = 'full'): Envelope<TablesWire>[] {
    this.#startSync(now, peer, mode);
    return this.#flush();
  }

  /** `weft node rm <nodeId>` run on this node: the revocation is written, merged and gossiped. */
  revoke(now: number, nodeId: string): Envelope<TablesWire>[] {
    this.#publishRecords(now, [this.members.revoke(nodeId)]);
    return this.#flush();
  }

  /** Publishes member records on the cluster topic as this node (a test plays a faulty or hostile member with it). */
  publishRecords(now: number, records: readonly MemberRecord[]): Envelope<TablesWire>[] {
    this.#publishRecords(now, records);
    return this.#flush();
  }

  /** What the agent's TableStore would hold: every stored entry and the Lamport time. */
  persisted(now: number): PersistedTables {
    const entries = this.tables.tableNames().flatMap((table) => this.tables.stored(table).map((e) => toWire(e, now)));
    return { lamport: this.tables.lamport, entries };
  }

  // ---- internals ----------------------------------------------------------

  /** The core's Ready over the virtual network (persistence is modelled by crash() taking persisted()). */
  #run(now: number, ready: Ready): void {
    deliverReady(ready, {
      subscribe: (topic) => this.router.subscribe(topic),
      publish: ({ topic, entries }) => this.#later(now, this.timing.signMs, (t) => this.#sendRpcs(this.router.publish(t, topic, entries).sends)),
      send: ({ to, message }) => this.#send(to, { kind: 'swim', message }),
      memberChanged: ({ member, previous, reaction }) => {
        if (reaction.dropConnections && member.id !== this.id) this.#onDropConnections?.(member.id);
        if (reaction.sync && this.#connections.has(member.id)) this.#startSync(now, member.id);
        this.#onMemberChanged?.(now, this.id, member, previous);
      },
    });
  }

  #startSync(now: number, peer: string, mode: SyncMode = 'full'): void {
    this.#exchangeSeq += 1;
    const exchange = `${this.id}/${this.#exchangeSeq}`;
    const digest = this.core.digest();
    this.#pending.set(exchange, { peer, digest, mode, expiresAt: now + this.timing.syncTimeoutMs });
    this.syncCounters.started += 1;
    const membership = mode === 'digest' ? this.#digests() : { snapshot: this.membership.snapshot(), summary: this.#summary() };
    this.#send(peer, { kind: 'sync-open', exchange, digest, ...membership });
  }

  /** The hashes a digest round sends for the roster and the liveness view (roster-sync.ts). */
  #digests(): SyncDigests {
    return { rosterDigest: this.members.digest(), membershipDigest: syncDigests([], this.membership.members()).membershipDigest };
  }

  #summary(): MemberSummary[] {
    return this.members.roster.all().map(summaryOf);
  }

  /** Records a peer lacks by its summary; none when it sent hashes only (roster-sync.ts recordsFor). */
  #recordsFor(summary: readonly MemberSummary[] | undefined): MemberRecord[] {
    return summary === undefined ? [] : recordsNewerThan(this.members.roster.all(), summary);
  }

  /** Received records through the roster's intake; the outcome carried out as cluster-node.ts does. */
  #takeRecords(now: number, records: readonly MemberRecord[], origin: RecordOrigin): void {
    if (records.length === 0) return;
    const taken = this.members.take(records, origin);
    this.refusedRecords.push(...taken.refused);
    if (taken.publish.length > 0) this.#publishRecords(now, taken.publish);
    for (const record of taken.merged) if (record.status !== 'active') this.#onMemberInactive?.(record.nodeId);
    if (taken.revoked) this.#onRevoked?.();
  }

  #publishRecords(now: number, members: readonly MemberRecord[]): void {
    this.#later(now, this.timing.signMs, (t) => this.#sendRpcs(this.router.publish(t, CLUSTER_RECORD_TOPIC, { members }).sends));
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
    this.#startSync(now, peers[randomInt(this.#rng, peers.length)] as string, 'digest');
  }

  /**
   * A validated first copy: member records go to the roster's intake, table
   * entries to the core (which applies what belongs on its topic); then it is
   * forwarded. The cluster topic accepts only an active member's messages
   * (cluster-gossip.ts topic validator): anything else is neither taken nor forwarded.
   */
  #deliver(now: number, message: GossipMessage<GossipData>, source: string): void {
    const { data } = message;
    if (isRecordBatch(data)) {
      if (message.topic !== CLUSTER_RECORD_TOPIC || !this.members.isActive(message.from)) return;
      this.#takeRecords(now, data.members, { kind: 'gossip', senderId: message.from });
    } else {
      this.#run(now, this.core.step(now, { kind: 'gossip', from: message.from, topic: message.topic, entries: data }));
    }
    this.#sendRpcs(this.router.accept(message, source));
  }

  #later(now: number, delayMs: number, run: (now: number) => void): void {
    if (delayMs <= 0) {
      run(now);
      return;
    }
    this.#deferred.push({ at: now + delayMs, seq: this.#deferredSeq++, run });
  }

  #sendRpcs(sends: readonly RouterSend<GossipData>[]): void {
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
