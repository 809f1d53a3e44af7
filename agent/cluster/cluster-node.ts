// A running cluster member: the roster and token state, the libp2p host, the
// cluster gossip topic, state sync on connect, and the dialer that keeps a
// connection to every admitted member. The agent API and admission server call
// into it; it never touches the data plane.
import { multiaddr } from '@multiformats/multiaddr';
import { peerIdFromString } from '@libp2p/peer-id';
import type { Logger } from 'pino';
import type { PeerId, Connection } from '@libp2p/interface';
import { Roster, implausibleVersion, recordsNewerThan, summaryOf, type MemberRecord } from '../../controlplane/cluster/roster.ts';
import { newerToken, rotatedToken, type TokenRecord } from '../../controlplane/cluster/token-record.ts';
import { newTokenSecret, formatToken, caDigestOf } from '../../controlplane/security/token.ts';
import type { ClusterMaterial, DataDir, NodeKeys } from '../daemon/data-dir.ts';
import type { Snapshot, ClusterSettings, Envelope } from '../wire/cluster-codec.ts';
import { createWeftLibp2p, type WeftLibp2p } from './libp2p-node.ts';
import { ClusterGossip } from './cluster-gossip.ts';
import { registerSync, syncWith, type SyncHandlers } from './state-sync.ts';
import { RecordVerifier } from './record-verifier.ts';
import { OwnerKeys } from './owner-keys.ts';
import { recordSignatureProblem, signedRecordFields } from '../../controlplane/cluster/record-signing.ts';
import { Liveness } from './liveness.ts';
import { DeferredSave } from '../daemon/deferred-save.ts';
import { TableService } from './table-service.ts';
import { networkTopic } from './table-topics.ts';
import { swimAddress } from './swim-transport.ts';
import { abortConnections, abortSuperseded, newestOpenConnection } from './stale-connections.ts';
import { reactionToMemberChange } from '../../controlplane/cluster/member-reactions.ts';
import { decodeSwimSnapshot, encodeSwimSnapshot } from '../wire/swim-codec.ts';
import type { MemberState } from '../../controlplane/membership/index.ts';
import { SampledLog } from '../util/sampled-log.ts';

// A member with no connection is re-dialled every second, and a TCP connect
// is given up after a second: the kernel would retransmit an unanswered SYN
// only after 1, 3, 7 s, so waiting longer means a healed link goes unnoticed
// for seconds. The rest of the dial (PSK, Noise, yamux) gets DIAL_TIMEOUT_MS.
const DIAL_INTERVAL_MS = 1_000;
export const CONNECT_TIMEOUT_MS = 1_000;
const DIAL_TIMEOUT_MS = 5_000;
const PERSIST_DELAY_MS = 50;
// Anti-entropy beyond the sync on every new connection: one random peer per
// period, so state that gossip missed converges even on a quiet cluster.
const PERIODIC_SYNC_MS = 30_000;
// Gossip reaches every connected member in milliseconds; a second is ample.
const REVOCATION_SETTLE_MS = 1_000;
// An unreachable member is redialled every second: the first few failures
// per minute are logged in full (warn), the rest summed up once a minute.
const DIAL_FAILURE_LOG = { burst: 3, intervalMs: 60_000 };

export interface ClusterNodeOptions {
  keys: NodeKeys;
  material: ClusterMaterial;
  state: Snapshot;
  dataDir: DataDir;
  logger: Logger;
  listenIp: string;
  gossipPort: number;
  /** How long deletes are remembered (tombstone reap time). */
  tableReapMs?: number;
  /** Called when this node learns it was revoked; the agent then forgets the cluster. */
  onRevoked: () => void;
}

export interface MemberView {
  record: MemberRecord;
  state: MemberState;
  incarnation: number;
  connected: boolean;
  self: boolean;
}

export class ClusterNode {
  readonly material: ClusterMaterial;
  readonly roster = new Roster();
  readonly #options: ClusterNodeOptions;
  readonly #log: Logger;
  readonly #verifier: RecordVerifier;
  readonly #ownerKeys: OwnerKeys;
  readonly #dialFailures: SampledLog;
  #token: TokenRecord;
  #settings: ClusterSettings;
  #libp2p!: WeftLibp2p;
  #gossip!: ClusterGossip;
  #liveness!: Liveness;
  #tables!: TableService;
  #sync!: SyncHandlers;
  #syncTimer: NodeJS.Timeout | undefined;
  #dialTimer: NodeJS.Timeout | undefined;
  readonly #deferredSave = new DeferredSave(PERSIST_DELAY_MS, () => this.persist());
  #dialing = new Set<string>();
  #stopped = false;
  /** Anti-entropy rounds since start, by outcome (metrics; readiness needs one completed). */
  readonly syncRounds = { ok: 0, failed: 0 };

  private constructor(options: ClusterNodeOptions) {
    this.#options = options;
    this.material = options.material;
    this.#log = options.logger.child({ component: 'cluster' });
    this.#verifier = new RecordVerifier(options.material.caCertificate);
    this.#ownerKeys = new OwnerKeys(options.keys.libp2pKey);
    this.#dialFailures = new SampledLog(this.#log, DIAL_FAILURE_LOG, { message: 'could not reach a member; retrying every second', summary: 'failed dials', subjectField: 'node' });
    if (!options.state.token) throw new Error('cluster state has no join token record');
    this.#token = options.state.token;
    this.#settings = options.state.settings ?? { defaultAddrPool: '' };
    for (const record of options.state.members) this.roster.merge(record);
  }

  static async start(options: ClusterNodeOptions): Promise<ClusterNode> {
    const node = new ClusterNode(options);
    await node.#startTransport();
    return node;
  }

  get nodeId(): string {
    return this.material.nodeId;
  }

  get self(): MemberRecord {
    const record = this.roster.get(this.nodeId);
    if (!record) throw new Error('own member record missing from the roster');
    return record;
  }

  get clusterId(): string {
    return Buffer.from(caDigestOf(this.material.caCertificate)).toString('hex');
  }

  get settings(): ClusterSettings {
    return this.#settings;
  }

  get token(): TokenRecord {
    return this.#token;
  }

  joinToken(): string {
    return formatToken({ caDigest: caDigestOf(this.material.caCertificate), secret: this.#token.secret });
  }

  connectedPeers(): number {
    return this.#libp2p.getPeers().length;
  }

  async #startTransport(): Promise<void> {
    const isAdmitted = (peerId: PeerId): boolean => this.roster.isAdmitted(peerId.toString());
    this.#libp2p = await createWeftLibp2p({
      privateKey: this.#options.keys.libp2pKey,
      psk: this.material.psk,
      listenIp: this.#options.listenIp,
      port: this.#options.gossipPort,
      isAdmitted,
      isMemberAddress: (ip) => this.roster.isMemberAddress(ip),
      connectTimeoutMs: CONNECT_TIMEOUT_MS,
    });
    const onError = (error: Error, peer: string): void => this.#log.warn({ peer, err: error.message }, 'rejected cluster state from peer');
    this.#gossip = new ClusterGossip(this.#libp2p, {
      isAdmitted,
      ingest: (envelope, from) => this.ingest(envelope, { kind: 'gossip', peerId: from }),
      onError,
    });
    this.#tables = new TableService({
      node: this.#libp2p,
      selfId: this.nodeId,
      logger: this.#log,
      store: this.#options.dataDir.tableStore(),
      reapMs: this.#options.tableReapMs,
      nodeIdOfPeer: (peerId) => this.#activeNodeIdOf(peerId),
      isAdmittedOwner: (nodeId) => {
        const status = this.roster.get(nodeId)?.status;
        return status === 'active' || status === 'left';
      },
      sign: (payload) => this.#ownerKeys.sign(payload),
      // The owner's key is the one behind the peer ID its certificate-checked roster record names.
      verify: (owner, payload, signature) => {
        const peerId = this.roster.get(owner)?.peerId;
        return peerId !== undefined && this.#ownerKeys.verifyByPeer(peerId, payload, signature);
      },
    });
    const sync: SyncHandlers = {
      opening: () => ({ ...this.snapshot(), members: [], summary: this.roster.all().map(summaryOf) }),
      answerTo: (remote) => ({ ...this.snapshot(), members: recordsNewerThan(this.roster.all(), remote.summary ?? []), summary: this.roster.all().map(summaryOf) }),
      recordsFor: (remote) => recordsNewerThan(this.roster.all(), remote.summary ?? []),
      ingest: (remote, from) => this.ingest(remote, { kind: 'sync', peerId: from }),
      nodeIdOfPeer: (peerId) => this.#activeNodeIdOf(peerId),
      digest: () => this.#tables.digest(),
      answer: (digest) => this.#tables.answer(digest),
      complete: (peer, digest, reply) => this.#tables.complete(peer, digest, reply),
      finish: (peer, entries, dropped) => this.#tables.finish(peer, entries, dropped),
      onError: (error, peer) => {
        this.syncRounds.failed += 1;
        this.#log.debug({ peer, err: error.message }, 'state sync failed');
      },
      onComplete: () => void (this.syncRounds.ok += 1),
    };
    this.#sync = sync;
    await registerSync(this.#libp2p, sync);
    this.#libp2p.addEventListener('connection:open', (event) => {
      const connection: Connection = event.detail;
      const node = this.#activeNodeIdOf(connection.remotePeer.toString());
      const superseded = abortSuperseded(this.#libp2p, connection);
      this.#log.info({ node, direction: connection.direction, superseded }, 'connection opened');
      if (connection.direction === 'outbound') void syncWith(connection, sync);
    });
    this.#libp2p.addEventListener('connection:close', (event) => {
      const connection: Connection = event.detail;
      this.#log.info({ node: this.#activeNodeIdOf(connection.remotePeer.toString()), direction: connection.direction }, 'connection closed');
    });
    await this.#libp2p.start();
    await this.#startLiveness();
    this.#dialTimer = setInterval(() => this.#dialMembers(), DIAL_INTERVAL_MS);
    this.#syncTimer = setInterval(() => this.#syncWithRandomPeer(), PERIODIC_SYNC_MS);
    this.#dialMembers();
  }

  async #startLiveness(): Promise<void> {
    const self = this.self;
    this.#liveness = await Liveness.start({
      node: this.#libp2p,
      selfId: this.nodeId,
      selfAddress: swimAddress(self.address, self.gossipPort, self.peerId),
      logger: this.#log,
      nodeIdOfPeer: (peerId) => this.#activeNodeIdOf(peerId),
      claims: {
        sign: (payload) => this.#ownerKeys.sign(payload),
        // As for table entries: the member's key is the one behind the peer ID of its certificate-checked roster record.
        verify: (nodeId, payload, signature) => {
          const peerId = this.roster.get(nodeId)?.peerId;
          return peerId !== undefined && this.#ownerKeys.verifyByPeer(peerId, payload, signature);
        },
      },
    });
    // Liveness drives visibility: a dead or departed node's entries are hidden at once.
    this.#liveness.onChange((member, previous) => {
      const reaction = reactionToMemberChange(member.state, previous);
      this.#tables.setNodeLive(member.id, reaction.visible);
      if (reaction.dropConnections) this.#dropConnectionsTo(member.id);
      if (reaction.sync) this.#syncWithMember(member.id);
    });
    this.#liveness.onReaped((nodeId) => this.#tables.forgetNode(nodeId));
    for (const record of this.roster.all()) this.#track(record);
  }

  #activeNodeIdOf(peerId: string): string | undefined {
    const record = this.roster.byPeerId(peerId);
    return record?.status === 'active' ? record.nodeId : undefined;
  }

  get tables(): TableService {
    return this.#tables;
  }

  get libp2p(): WeftLibp2p {
    return this.#libp2p;
  }

  get liveness(): Liveness {
    return this.#liveness;
  }

  /** Node IDs that failure detection currently holds alive (or suspect), self included. */
  reachable(): string[] {
    return this.#liveness.membership
      .members()
      .filter((m) => (m.state === 'alive' || m.state === 'suspect') && this.roster.get(m.id)?.status === 'active')
      .map((m) => m.id);
  }

  /** The libp2p address of an active member (peer ID included), for direct protocols. */
  addressOf(nodeId: string): string | undefined {
    const record = this.roster.get(nodeId);
    return record?.status === 'active' ? swimAddress(record.address, record.gossipPort, record.peerId) : undefined;
  }

  nodeIdOfPeer(peerId: string): string | undefined {
    return this.#activeNodeIdOf(peerId);
  }

  /** Starts failure detection of an active member (a no-op for known ones at the same address). */
  #track(record: MemberRecord): void {
    if (record.status !== 'active' || record.nodeId === this.nodeId) return;
    const address = swimAddress(record.address, record.gossipPort, record.peerId);
    const known = this.#liveness.view(record.nodeId);
    if (known?.address !== address) this.#liveness.addMember(record.nodeId, address);
  }

  /** Anti-entropy with a host already on the network (a subscriber of its topic), after joining it. */
  syncNetwork(networkId: string): void {
    const subscribers = new Set(this.#libp2p.services.pubsub.getSubscribers(networkTopic(networkId)).map((p) => p.toString()));
    const candidates = this.#libp2p.getConnections().filter((c) => c.status === 'open' && subscribers.has(c.remotePeer.toString()));
    const pick = candidates[Math.floor(Math.random() * candidates.length)];
    if (pick) void syncWith(pick, this.#sync);
  }

  /**
   * A member back from dead may have written entries we never got (its
   * gossip went nowhere while we held it dead, or reached us over a path
   * that has since broken): sync with it now rather than at the next
   * periodic round. Without an open connection there is nothing to do: the
   * dialer makes one, and every new connection starts with a sync.
   */
  #syncWithMember(nodeId: string): void {
    const record = this.roster.get(nodeId);
    if (!record || this.#stopped) return;
    const newest = newestOpenConnection(this.#libp2p, record.peerId);
    if (newest) void syncWith(newest, this.#sync);
  }

  #syncWithRandomPeer(): void {
    const connections = this.#libp2p.getConnections().filter((c) => c.status === 'open');
    const pick = connections[Math.floor(Math.random() * connections.length)];
    if (pick) void syncWith(pick, this.#sync);
  }

  snapshot(): Snapshot {
    return { members: this.roster.all(), token: this.#token, settings: this.#settings, membership: encodeSwimSnapshot(this.#liveness.snapshot()) };
  }

  /** What is persisted: liveness is rebuilt from the network after a restart. */
  #durableSnapshot(): Snapshot {
    return { members: this.roster.all(), token: this.#token, settings: this.#settings };
  }

  /**
   * Merges records from a peer. Gossip carries only what the sender itself
   * wrote (changedBy must be the sender); sync relays others' records, whose
   * certificates are verified either way.
   */
  async ingest(incoming: Envelope | Snapshot, origin: { kind: 'gossip' | 'sync'; peerId: string }): Promise<void> {
    if (this.#stopped) return;
    const sender = this.roster.byPeerId(origin.peerId);
    if (!sender || sender.status !== 'active') return;
    let changed = false;
    for (const record of incoming.members) {
      if (origin.kind === 'gossip' && record.changedBy !== sender.nodeId) {
        this.#log.warn({ peer: origin.peerId, node: record.nodeId }, 'refused a member record written by another node');
        continue;
      }
      if (await this.#accept(record)) changed = true;
    }
    if (incoming.token && newerToken(incoming.token, this.#token)) {
      this.#token = incoming.token;
      changed = true;
      this.#log.info({ version: this.#token.version }, 'join token rotated by another member');
    }
    if ('settings' in incoming && incoming.settings?.defaultAddrPool && !this.#settings.defaultAddrPool) {
      this.#settings = incoming.settings;
      changed = true;
    }
    if (changed) this.#schedulePersist();
    if ('membership' in incoming && incoming.membership) {
      try {
        this.#liveness.mergeSnapshot(decodeSwimSnapshot(incoming.membership));
      } catch (error) {
        this.#log.warn({ peer: origin.peerId, err: (error as Error).message }, 'refused a membership snapshot');
      }
    }
  }

  async #accept(record: MemberRecord): Promise<boolean> {
    const problem = await this.#verifier.verify(record);
    if (problem) {
      this.#log.warn({ node: record.nodeId, problem }, 'refused a member record');
      return false;
    }
    const implausible = implausibleVersion(record.version, this.roster.get(record.nodeId)?.version) ?? this.#signatureProblem(record);
    if (implausible) {
      this.#log.warn({ node: record.nodeId, problem: implausible }, 'refused a member record');
      return false;
    }
    if (record.nodeId === this.nodeId) return this.#acceptAboutSelf(record);
    const outcome = this.roster.merge(record);
    if (outcome === 'ignored') return false;
    this.#log.info({ node: record.nodeId, name: record.name, status: record.status }, `member ${outcome}`);
    if (record.status !== 'active') void this.#disconnect(record.peerId);
    else {
      this.#track(record);
      this.#dialMembers();
    }
    return true;
  }

  #signatureProblem(record: MemberRecord): string | undefined {
    const activePeerOf = (nodeId: string): string | undefined => {
      const writer = this.roster.get(nodeId);
      return writer?.status === 'active' ? writer.peerId : undefined;
    };
    return recordSignatureProblem(record, activePeerOf, (peerId, payload, signature) => this.#ownerKeys.verifyByPeer(peerId, payload, signature));
  }

  /** This node is the writer of `record`: signs it (record-signing.ts). */
  #signed(record: MemberRecord): MemberRecord {
    const unsigned: MemberRecord = { ...record };
    delete unsigned.signature;
    return { ...unsigned, signature: this.#ownerKeys.sign(signedRecordFields(unsigned)) };
  }

  /** Nobody else may change our record, except to revoke us. */
  #acceptAboutSelf(record: MemberRecord): boolean {
    const current = this.self;
    if (record.status === 'revoked') {
      this.roster.merge(record);
      this.#log.error('this node was removed from the cluster (weft node rm); leaving');
      this.#options.onRevoked();
      return true;
    }
    if (record.version >= current.version && (record.status !== current.status || record.changedBy !== current.changedBy)) {
      // A stale or foreign version of our record: outvote it with our own.
      this.#updateSelf({ version: record.version + 1 });
      return true;
    }
    return false;
  }

  #updateSelf(change: Partial<MemberRecord>): MemberRecord {
    const current = this.self;
    const next = this.#signed({ ...current, ...change, version: change.version ?? current.version + 1, changedBy: this.nodeId });
    this.roster.merge(next);
    this.#gossip.publishMember(next);
    this.#schedulePersist();
    return next;
  }

  /**
   * Makes our own record say what this agent runs with now (after a restart
   * with a new advertise address, say) and be written by us, not our sponsor.
   */
  ensureSelf(fields: Pick<MemberRecord, 'name' | 'address' | 'gossipPort' | 'admissionPort'>): void {
    const current = this.self;
    const stale = (Object.keys(fields) as Array<keyof typeof fields>).some((k) => current[k] !== fields[k]);
    // An agent before record signatures left its record unsigned: sign a new version of it.
    const unsigned = current.signature === undefined || current.signature.length === 0;
    if (stale || unsigned || current.changedBy !== this.nodeId) this.#updateSelf(fields);
  }

  /** Adds a freshly admitted member (called by the admission server). */
  addAdmitted(admitted: MemberRecord): void {
    const record = this.#signed({ ...admitted, changedBy: this.nodeId });
    this.roster.merge(record);
    this.#track(record);
    this.#gossip.publishMember(record);
    this.#schedulePersist();
    this.#dialMembers();
  }

  rotateToken(): string {
    this.#token = rotatedToken(this.#token, newTokenSecret(), this.nodeId);
    this.#gossip.publishToken(this.#token);
    this.#schedulePersist();
    return this.joinToken();
  }

  /**
   * Revokes a member and retires the join token it knew: the token is rotated
   * once the revocation has had a moment to reach the other members, so that
   * none of them still counts the removed node as a peer (and forwards it the
   * new secret) when the rotation arrives. Returns the new token.
   */
  async revoke(reference: string): Promise<{ record: MemberRecord; token: string }> {
    const target = this.roster.resolve(reference);
    if (typeof target === 'string') throw new Error(target);
    if (target.nodeId === this.nodeId) throw new Error('a node cannot remove itself; run `weft leave` on it, or `weft node rm` on another member');
    const revoked = this.#signed({ ...target, status: 'revoked', version: target.version + 1, changedBy: this.nodeId });
    this.roster.merge(revoked);
    this.#gossip.publishMember(revoked);
    await this.#gossip.flush();
    this.#schedulePersist();
    await this.#disconnect(revoked.peerId);
    await new Promise((resolve) => setTimeout(resolve, REVOCATION_SETTLE_MS));
    return { record: revoked, token: this.rotateToken() };
  }

  /** Announces a graceful leave and waits (briefly) for it to go out. */
  async announceLeave(): Promise<void> {
    this.#updateSelf({ status: 'left' });
    await this.#gossip.flush();
    await this.#liveness.leave();
    // gossipsub sends asynchronously; give the frames a moment to leave the socket.
    await new Promise((resolve) => setTimeout(resolve, 300));
  }

  members(): MemberView[] {
    const connected = new Set(this.#libp2p.getPeers().map((p) => p.toString()));
    return this.roster
      .all()
      .filter((r) => r.status !== 'revoked')
      .map((record) => {
        const live = this.#liveness.view(record.nodeId);
        // A graceful leave recorded in the roster outranks whatever liveness last saw.
        const state: MemberState = record.status === 'left' ? 'left' : (live?.state ?? 'alive');
        return { record, state, incarnation: live?.incarnation ?? 0, connected: connected.has(record.peerId), self: record.nodeId === this.nodeId };
      });
  }

  /** A dead member's connections are likely stalled (see stale-connections.ts): drop them so the dialer makes fresh ones. */
  #dropConnectionsTo(nodeId: string): void {
    const record = this.roster.get(nodeId);
    if (!record || this.#stopped) return;
    const aborted = abortConnections(this.#libp2p, record.peerId, 'member declared dead by failure detection');
    if (aborted > 0) this.#log.info({ node: nodeId, aborted }, 'dropped the connections of a dead member; redialling');
  }

  #dialMembers(): void {
    if (this.#stopped) return;
    const connected = new Set(this.#libp2p.getPeers().map((p) => p.toString()));
    for (const member of this.roster.all()) {
      if (member.status !== 'active' || member.nodeId === this.nodeId) continue;
      if (connected.has(member.peerId) || this.#dialing.has(member.peerId)) continue;
      this.#dialing.add(member.peerId);
      const address = multiaddr(`/ip4/${member.address}/tcp/${member.gossipPort}/p2p/${member.peerId}`);
      const startedAt = Date.now();
      this.#libp2p
        .dial(address, { signal: AbortSignal.timeout(DIAL_TIMEOUT_MS) })
        .catch((error: Error) => {
          if (!this.#stopped) this.#dialFailures.event(member.nodeId, error.message);
        })
        .finally(() => {
          this.#dialing.delete(member.peerId);
          // A dial that waited out its connect timeout is retried at once, so
          // a SYN goes out every second while the member is unreachable;
          // quick failures (connection refused) wait for the interval.
          if (Date.now() - startedAt >= CONNECT_TIMEOUT_MS) this.#dialMembers();
        });
    }
  }

  async #disconnect(peerId: string): Promise<void> {
    try {
      await this.#libp2p.hangUp(peerIdFromString(peerId));
    } catch {
      // not connected: nothing to close
    }
  }

  #schedulePersist(): void {
    this.#deferredSave.schedule();
  }

  persist(): void {
    if (this.#stopped) return;
    try {
      this.#options.dataDir.saveState(this.#durableSnapshot());
    } catch (error) {
      this.#log.error({ err: (error as Error).message }, 'could not save cluster state');
    }
  }

  async stop(): Promise<void> {
    this.#deferredSave.flush();
    this.#dialFailures.flush();
    this.#stopped = true;
    if (this.#dialTimer) clearInterval(this.#dialTimer);
    if (this.#syncTimer) clearInterval(this.#syncTimer);
    this.#liveness.stop();
    this.#tables.stop();
    this.#gossip.stop();
    await this.#libp2p.stop();
  }
}
