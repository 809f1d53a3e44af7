// A running cluster member: the roster and token state, the libp2p host, the
// cluster gossip topic, state sync on connect, and the dialer that keeps a
// connection to every admitted member. The agent API and admission server call
// into it; it never touches the data plane.
import type { Logger } from 'pino';
import type { PeerId } from '@libp2p/interface';
import { Roster, type MemberRecord } from '../../controlplane/cluster/roster.ts';
import { selfRecordStale } from '../../controlplane/cluster/member-record-rules.ts';
import { originProblem, takeRecord } from '../../controlplane/cluster/record-intake.ts';
import { newerToken, rotatedToken, type TokenRecord } from '../../controlplane/cluster/token-record.ts';
import { newTokenSecret, formatToken, caDigestOf } from '../../controlplane/security/token.ts';
import type { ClusterMaterial, DataDir, NodeKeys } from '../daemon/data-dir.ts';
import type { Snapshot, ClusterSettings, Envelope } from '../wire/cluster-codec.ts';
import { memberSyncHandlers, type SyncRounds } from './member-sync.ts';
import { createWeftLibp2p, type WeftLibp2p } from './libp2p-node.ts';
import { ClusterGossip } from './cluster-gossip.ts';
import { SyncScheduler } from './sync-scheduler.ts';
import { RecordVerifier } from './record-verifier.ts';
import { OwnerKeys } from './owner-keys.ts';
import { DeferredSave } from '../daemon/deferred-save.ts';
import { TableService } from './table-service.ts';
import type { NodeRunner } from './node-runner.ts';
import { createMemberNodeRunner } from './member-node-runner.ts';
import { swimAddress } from './swim-transport.ts';
import { CONNECT_TIMEOUT_MS, MemberDialer } from './member-dialer.ts';
import { decodeSwimSnapshot, encodeSwimSnapshot } from '../wire/swim-codec.ts';
import { memberViews, reachableMembers, type MemberView } from '../../controlplane/cluster/member-views.ts';

const PERSIST_DELAY_MS = 50;
// Gossip reaches every connected member in milliseconds; a second is ample.
const REVOCATION_SETTLE_MS = 1_000;

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

export type { MemberView } from '../../controlplane/cluster/member-views.ts';

export class ClusterNode {
  readonly material: ClusterMaterial;
  readonly roster = new Roster();
  readonly #options: ClusterNodeOptions;
  readonly #log: Logger;
  readonly #verifier: RecordVerifier;
  readonly #ownerKeys: OwnerKeys;
  #token: TokenRecord;
  #settings: ClusterSettings;
  #libp2p!: WeftLibp2p;
  #gossip!: ClusterGossip;
  #runner!: NodeRunner;
  #tables!: TableService;
  #sync!: SyncScheduler;
  readonly #dialer: MemberDialer;
  readonly #deferredSave = new DeferredSave(PERSIST_DELAY_MS, () => this.persist());
  #stopped = false;
  readonly syncRounds: SyncRounds = { ok: 0, failed: 0, differed: 0 };

  private constructor(options: ClusterNodeOptions) {
    this.#options = options;
    this.material = options.material;
    this.#log = options.logger.child({ component: 'cluster' });
    this.#verifier = new RecordVerifier(options.material.caCertificate);
    this.#ownerKeys = new OwnerKeys(options.keys.libp2pKey);
    if (!options.state.token) throw new Error('cluster state has no join token record');
    this.#token = options.state.token;
    this.#settings = options.state.settings ?? { defaultAddrPool: '' };
    for (const record of options.state.members) this.roster.merge(record);
    this.#dialer = new MemberDialer({ libp2p: () => this.#libp2p, selfId: this.nodeId, members: () => this.roster.all(), logger: this.#log });
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
    this.#runner = createMemberNodeRunner({
      libp2p: this.#libp2p,
      roster: this.roster,
      ownerKeys: this.#ownerKeys,
      material: this.material,
      listenIp: this.#options.listenIp,
      gossipPort: this.#options.gossipPort,
      store: this.#options.dataDir.tableStore(),
      reapMs: this.#options.tableReapMs,
      activeNodeIdOf: (peerId) => this.nodeIdOfPeer(peerId),
      logger: this.#log,
    });
    this.#tables = new TableService(this.#runner);
    this.#sync = new SyncScheduler(this.#libp2p, memberSyncHandlers({
      roster: this.roster,
      runner: this.#runner,
      tables: this.#tables,
      snapshot: () => this.snapshot(),
      durable: () => this.#durableSnapshot(),
      ingest: (remote, from) => this.ingest(remote, { kind: 'sync', peerId: from }),
      activeNodeIdOf: (peerId) => this.nodeIdOfPeer(peerId),
      rounds: this.syncRounds,
      logger: this.#log,
    }));
    await this.#sync.register();
    this.#dialer.watch((connection) => this.#sync.connectionOpened(connection), (peerId) => this.nodeIdOfPeer(peerId));
    await this.#libp2p.start();
    await this.#startLiveness();
    this.#sync.start();
    this.#dialer.start();
  }

  async #startLiveness(): Promise<void> {
    await this.#runner.startSwim();
    // Visibility is the core's business; connections and syncs are ours.
    this.#runner.onMemberChange(({ member, reaction }) => {
      if (reaction.dropConnections) {
        const record = this.roster.get(member.id);
        if (record && !this.#stopped) this.#dialer.dropConnectionsTo(record);
      }
      const peerId = this.roster.get(member.id)?.peerId;
      if (reaction.sync && peerId && !this.#stopped) this.#sync.withPeer(peerId);
    });
    for (const record of this.roster.all()) this.#track(record);
  }

  get tables(): TableService {
    return this.#tables;
  }

  get libp2p(): WeftLibp2p {
    return this.#libp2p;
  }

  /** Failure detection and the tables as one running node core. */
  get liveness(): NodeRunner {
    return this.#runner;
  }

  /** Node IDs that failure detection currently holds alive (or suspect), self included. */
  reachable(): string[] {
    return reachableMembers(this.#runner.membership.members(), (nodeId) => this.roster.get(nodeId)?.status);
  }

  /** The libp2p address of an active member (peer ID included), for direct protocols. */
  addressOf(nodeId: string): string | undefined {
    const record = this.roster.get(nodeId);
    return record?.status === 'active' ? swimAddress(record.address, record.gossipPort, record.peerId) : undefined;
  }

  /** The node ID of an active member's peer ID (undefined for anyone else). */
  nodeIdOfPeer(peerId: string): string | undefined {
    const record = this.roster.byPeerId(peerId);
    return record?.status === 'active' ? record.nodeId : undefined;
  }

  /** Starts failure detection of an active member (a no-op for known ones at the same address). */
  #track(record: MemberRecord): void {
    if (record.status !== 'active' || record.nodeId === this.nodeId) return;
    const address = swimAddress(record.address, record.gossipPort, record.peerId);
    const known = this.#runner.view(record.nodeId);
    if (known?.address !== address) this.#runner.step({ kind: 'add-member', member: { id: record.nodeId, address, incarnation: 0 } });
  }

  /** Anti-entropy with a host already on the network (a subscriber of its topic), after joining it. */
  syncNetwork(networkId: string): void {
    this.#sync.withNetwork(networkId);
  }

  snapshot(): Snapshot {
    return { members: this.roster.all(), token: this.#token, settings: this.#settings, membership: encodeSwimSnapshot(this.#runner.membership.snapshot()) };
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
      const problem = originProblem(record, { kind: origin.kind, senderId: sender.nodeId });
      if (problem) {
        this.#log.warn({ peer: origin.peerId, node: record.nodeId, problem }, 'refused a member record written by another node');
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
        this.#runner.step({ kind: 'merge-snapshot', snapshot: decodeSwimSnapshot(incoming.membership) });
      } catch (error) {
        this.#log.warn({ peer: origin.peerId, err: (error as Error).message }, 'refused a membership snapshot');
      }
    }
  }

  /** The certificate check (asynchronous), then the roster's intake (record-intake.ts), carried out. */
  async #accept(record: MemberRecord): Promise<boolean> {
    const certificateProblem = await this.#verifier.verify(record);
    const verify = (peerId: string, payload: Uint8Array, signature: Uint8Array): boolean => this.#ownerKeys.verifyByPeer(peerId, payload, signature);
    const outcome = takeRecord(this.roster, record, { selfId: this.nodeId, verify, certificateProblem });
    switch (outcome.kind) {
      case 'refused':
        this.#log.warn({ node: record.nodeId, problem: outcome.problem }, 'refused a member record');
        return false;
      case 'unchanged':
        return false;
      case 'outvote':
        this.#updateSelf({ version: outcome.version });
        return true;
      case 'revoked':
        this.#log.error('this node was removed from the cluster (weft node rm); leaving');
        this.#options.onRevoked();
        return true;
      case 'merged':
        this.#log.info({ node: record.nodeId, name: record.name, status: record.status }, `member ${outcome.outcome}`);
        if (record.status !== 'active') void this.#dialer.disconnect(record.peerId);
        else {
          this.#track(record);
          this.#dialer.dialMembers();
        }
        return true;
    }
  }

  #updateSelf(change: Partial<MemberRecord>): MemberRecord {
    const current = this.self;
    const next = this.#ownerKeys.signRecord({ ...current, ...change, version: change.version ?? current.version + 1, changedBy: this.nodeId });
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
    if (selfRecordStale(this.self, this.nodeId, fields)) this.#updateSelf(fields);
  }

  /** Adds a freshly admitted member (called by the admission server). */
  addAdmitted(admitted: MemberRecord): void {
    const record = this.#ownerKeys.signRecord({ ...admitted, changedBy: this.nodeId });
    this.roster.merge(record);
    this.#track(record);
    this.#gossip.publishMember(record);
    this.#schedulePersist();
    this.#dialer.dialMembers();
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
    const revoked = this.#ownerKeys.signRecord({ ...target, status: 'revoked', version: target.version + 1, changedBy: this.nodeId });
    this.roster.merge(revoked);
    this.#gossip.publishMember(revoked);
    await this.#gossip.flush();
    this.#schedulePersist();
    await this.#dialer.disconnect(revoked.peerId);
    await new Promise((resolve) => setTimeout(resolve, REVOCATION_SETTLE_MS));
    return { record: revoked, token: this.rotateToken() };
  }

  /** Announces a graceful leave and waits (briefly) for it to go out. */
  async announceLeave(): Promise<void> {
    this.#updateSelf({ status: 'left' });
    await this.#gossip.flush();
    await this.#runner.leave();
    // gossipsub sends asynchronously; give the frames a moment to leave the socket.
    await new Promise((resolve) => setTimeout(resolve, 300));
  }

  members(): MemberView[] {
    const connected = new Set(this.#libp2p.getPeers().map((p) => p.toString()));
    return memberViews(this.roster.all(), (nodeId) => this.#runner.view(nodeId), connected, this.nodeId);
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
    this.#stopped = true;
    this.#dialer.stop();
    this.#sync.stop();
    this.#runner.stop();
    this.#gossip.stop();
    await this.#libp2p.stop();
  }
}
