// Runs the node core (controlplane/node/node-core.ts) on real time and the
// libp2p transport: SWIM packets in and out (UDP datagrams, swim-udp.ts; a
// stream when a packet does not fit one, swim-transport.ts), table
// batches on gossipsub topics, one timer at the core's next deadline, and
// the core's Ready performed in its order (persist, topics, publish, send,
// member reactions). The simulator runs the same core over its virtual
// network (controlplane/sim/tables-node.ts).
import { randomInt } from 'node:crypto';
import { TopicValidatorResult, type Message } from '@libp2p/gossipsub';
import type { Logger } from 'pino';
import { mulberry32, type ClaimSigning, type MemberView, type SwimMessage } from '../../controlplane/membership/index.ts';
import { toWire, type Entry, type WireEntry, type EntrySigner, type EntryVerifier } from '../../controlplane/tables/index.ts';
import { NodeCore, type NodeInput } from '../../controlplane/node/node-core.ts';
import { deliverReady, type MemberChange, type Ready } from '../../controlplane/node/ready.ts';
import { isTableTopic } from '../../controlplane/node/topics.ts';
import type { WeftLibp2p } from './libp2p-node.ts';
import { DeferredSave } from '../daemon/deferred-save.ts';
import { decodeEntryBatch, encodeEntryBatch } from '../wire/tables-codec.ts';
import { SwimCounters } from './swim-counters.ts';
import { registerSwim, sendSwim } from './swim-transport.ts';
import { SwimUdp, type SwimUdpOptions } from './swim-udp.ts';

// Membership's deadlines are exact; the cap is a safety net should one be missed.
const MAX_TICK_DELAY_MS = 1_000;
const LEAVE_DRAIN_MS = 1_500;
const PERSIST_DELAY_MS = 200;

export interface TableStore {
  load(): { lamport: number; entries: WireEntry[] } | undefined;
  save(lamport: number, entries: WireEntry[]): void;
}

export interface NodeRunnerOptions {
  node: WeftLibp2p;
  selfId: string;
  selfAddress: string;
  logger: Logger;
  store: TableStore;
  /** Node ID of an admitted peer, undefined otherwise. */
  nodeIdOfPeer: (peerId: string) => string | undefined;
  /** May entries owned by this node be accepted (has an unrevoked certificate)? */
  isAdmittedOwner: (nodeId: string) => boolean;
  /** Signs this node's table writes and incarnations with its node key (owner-keys.ts). */
  sign: EntrySigner;
  /** Checks an owner's signature on every received table version, on every path (reload included). */
  verify: EntryVerifier;
  /** Signs and checks SWIM incarnation claims. */
  claims: ClaimSigning;
  /** How long a delete is remembered (tombstone reap time); default 30 min. */
  reapMs?: number;
  /** SWIM's UDP socket: where it listens and how datagrams are sealed and checked. */
  datagrams?: Pick<SwimUdpOptions, 'psk' | 'listenIp' | 'port' | 'isMemberAddress' | 'sign' | 'verifyMember'>;
}

export type MemberChangeListener = (change: MemberChange) => void;
export type MemberReapedListener = (nodeId: string) => void;
/** This node's own entries that a peer held in a version this node did not (see TableService.ownEntriesAdopted). */
export type OwnEntriesListener = (entries: Entry[]) => void;

export class NodeRunner {
  readonly core: NodeCore;
  /** What failure detection did, for metrics (read from the core's output, not kept inside it). */
  readonly counters: SwimCounters;
  readonly #options: NodeRunnerOptions;
  readonly #node: WeftLibp2p;
  readonly #log: Logger;
  /** Same components as before the core existed, so log filters keep working. */
  readonly #membershipLog: Logger;
  readonly #deferredSave = new DeferredSave(PERSIST_DELAY_MS, () => this.persist());
  readonly #memberListeners: MemberChangeListener[] = [];
  readonly #reapedListeners: MemberReapedListener[] = [];
  readonly #ownEntriesListeners = new Set<OwnEntriesListener>();
  #timer: NodeJS.Timeout | undefined;
  #udp: SwimUdp | undefined;
  #stopped = false;

  constructor(options: NodeRunnerOptions) {
    this.#options = options;
    this.#node = options.node;
    this.#log = options.logger.child({ component: 'tables' });
    this.#membershipLog = options.logger.child({ component: 'membership' });
    const saved = options.store.load();
    this.core = new NodeCore({
      self: { id: options.selfId, address: options.selfAddress },
      now: Date.now(),
      // Seeded from the OS: production needs unpredictability, the simulator seeds its own.
      rng: mulberry32(randomInt(2 ** 31)),
      claims: options.claims,
      tables: {
        initialLamport: saved?.lamport ?? 0, isAdmitted: options.isAdmittedOwner, sign: options.sign, verify: options.verify,
        ...(options.reapMs === undefined ? {} : { reapMs: options.reapMs }),
      },
    });
    this.counters = new SwimCounters(options.selfId, this.core.membership.member(options.selfId)?.incarnation ?? 0);
    if (saved) this.#restore(saved.entries);
    const pubsub = options.node.services.pubsub;
    pubsub.addEventListener('message', (event) => this.#onMessage(event.detail));
    for (const topic of this.core.topics()) this.#subscribe(topic);
    this.#schedule();
  }

  /** Starts answering SWIM packets (once libp2p runs): datagrams, and streams for packets too large for one. */
  async startSwim(): Promise<void> {
    const receive = (from: string, message: SwimMessage): void => {
      this.counters.receivedMessage(message);
      this.step({ kind: 'swim', from, message });
    };
    await registerSwim(this.#node, {
      nodeIdOfPeer: this.#options.nodeIdOfPeer,
      receive,
      onError: (error, peer) => this.#membershipLog.debug({ peer, err: error.message }, 'dropped a SWIM packet'),
    });
    const datagrams = this.#options.datagrams;
    if (!datagrams) return;
    this.#udp = await SwimUdp.bind({
      ...datagrams,
      selfId: this.#options.selfId,
      receive,
      onDrop: (reason, error, ip) => {
        this.counters.dropped[reason] += 1;
        this.#membershipLog.debug({ ip, reason, err: error.message }, 'dropped a SWIM datagram');
      },
    });
  }

  #sendSwim(to: string, address: string, message: SwimMessage): void {
    if (this.#udp?.send(to, address, message)) return;
    sendSwim(this.#node, address, message).catch((error: Error) => this.#membershipLog.trace({ to, err: error.message }, 'SWIM send failed (counts as a lost packet)'));
  }

  #restore(saved: WireEntry[]): void {
    const result = this.core.restore(Date.now(), saved, this.#options.sign);
    if (result.refused > 0) this.#log.warn({ refused: result.refused, counters: this.core.tables.counters }, 'left out saved table entries that are not signed by their owner; sync brings back the genuine ones');
  }

  /** Feeds an input to the core and performs what it asks; `path` names where received entries came from. */
  step(input: NodeInput, path: string = input.kind): Ready {
    const ready = this.core.step(Date.now(), input);
    this.#perform(ready, 'from' in input ? input.from : undefined, path);
    return ready;
  }

  /** Membership's view of a member. */
  view(nodeId: string): MemberView | undefined {
    return this.core.membership.member(nodeId);
  }

  get membership(): NodeCore['membership'] {
    return this.core.membership;
  }

  onMemberChange(listener: MemberChangeListener): void {
    this.#memberListeners.push(listener);
  }

  /** A dead or left member was kept for the reap time and is now forgotten. */
  onReaped(listener: MemberReapedListener): void {
    this.#reapedListeners.push(listener);
  }

  onOwnEntriesAdopted(listener: OwnEntriesListener): () => void {
    this.#ownEntriesListeners.add(listener);
    return () => this.#ownEntriesListeners.delete(listener);
  }

  /** Announces "left" and keeps gossiping until the news is out (or a short deadline passes). */
  async leave(): Promise<void> {
    this.step({ kind: 'leave' });
    const deadline = Date.now() + LEAVE_DRAIN_MS;
    while (this.core.membership.pendingBroadcasts > 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  #perform(ready: Ready, from: string | undefined, path: string): void {
    if (this.#stopped) return;
    if (ready.refused > 0) this.#log.warn({ from, refused: ready.refused, path, counters: this.core.tables.counters }, 'refused table entries');
    deliverReady(ready, {
      persist: () => this.#deferredSave.schedule(),
      subscribe: (topic) => this.#subscribe(topic),
      unsubscribe: (topic) => this.#node.services.pubsub.unsubscribe(topic),
      publish: ({ topic, entries }) => {
        this.#node.services.pubsub
          .publish(topic, encodeEntryBatch(entries))
          .catch((error: Error) => this.#log.debug({ topic, err: error.message }, 'publish failed; anti-entropy will deliver'));
      },
      send: ({ to, address, message }) => {
        this.counters.effect({ kind: 'send', to, address, message });
        this.#sendSwim(to, address, message);
      },
      memberChanged: (change) => {
        const { member, previous } = change;
        this.counters.effect({ kind: 'member-changed', member, previous });
        if (member.state !== previous) this.#membershipLog.info({ node: member.id, state: member.state, incarnation: member.incarnation, previous }, 'member state changed');
        for (const listener of this.#memberListeners) listener(change);
      },
      reaped: (nodeId) => {
        for (const listener of this.#reapedListeners) listener(nodeId);
      },
      selfConflicts: (entries) => {
        for (const listener of this.#ownEntriesListeners) listener(entries);
      },
    });
    this.#schedule();
  }

  #schedule(): void {
    if (this.#stopped) return;
    if (this.#timer) clearTimeout(this.#timer);
    const delay = Math.min(MAX_TICK_DELAY_MS, Math.max(0, this.core.nextDeadline() - Date.now()));
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#perform(this.core.tick(Date.now()), undefined, 'tick');
    }, delay);
  }

  #subscribe(topic: string): void {
    const pubsub = this.#node.services.pubsub;
    pubsub.topicValidators.set(topic, (_peer, message: Message) =>
      message.type === 'signed' && this.#options.nodeIdOfPeer(message.from.toString()) ? TopicValidatorResult.Accept : TopicValidatorResult.Reject,
    );
    pubsub.subscribe(topic);
  }

  #onMessage(message: Message): void {
    if (!isTableTopic(message.topic) || message.type !== 'signed') return;
    const from = this.#options.nodeIdOfPeer(message.from.toString());
    if (!from) return;
    let decoded: { entries: WireEntry[]; dropped: number };
    try {
      decoded = decodeEntryBatch(message.data);
    } catch (error) {
      this.#log.warn({ from, err: (error as Error).message }, 'refused a table batch');
      return;
    }
    this.step({ kind: 'gossip', from, topic: message.topic, entries: decoded.entries, dropped: decoded.dropped });
  }

  /** Saves every stored entry and the Lamport time (a cluster-wide restart loses nothing). */
  persist(): void {
    const now = Date.now();
    const tables = this.core.tables;
    const entries = tables.tableNames().flatMap((t) => tables.stored(t).map((e) => toWire(e, now)));
    try {
      this.#options.store.save(tables.lamport, entries);
    } catch (error) {
      this.#log.error({ err: (error as Error).message }, 'could not save tables');
    }
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#udp?.close();
    this.#deferredSave.flush();
  }
}
