// Hosts the pure SWIM/Lifeguard state machine on real time and the libp2p
// transport: feeds it packets, ticks it at the deadline it asks for, performs
// its sends and reports member changes (alive/suspect/dead/left) to listeners.
import { randomInt } from 'node:crypto';
import type { Logger } from 'pino';
import { Membership, mulberry32, type ClaimSigning, type Effect, type MemberView, type Snapshot as SwimSnapshot } from '../../controlplane/membership/index.ts';
import type { WeftLibp2p } from './libp2p-node.ts';
import { registerSwim, sendSwim } from './swim-transport.ts';
import { SwimCounters } from './swim-counters.ts';

const MAX_TICK_DELAY_MS = 1_000;
const LEAVE_DRAIN_MS = 1_500;

export type MemberChangeListener = (member: MemberView, previous: MemberView['state'] | null) => void;
export type MemberReapedListener = (nodeId: string) => void;

export interface LivenessOptions {
  node: WeftLibp2p;
  selfId: string;
  selfAddress: string;
  logger: Logger;
  nodeIdOfPeer: (peerId: string) => string | undefined;
  /** Signs our incarnations with the node key and verifies members' (owner-keys.ts). */
  claims: ClaimSigning;
}

export class Liveness {
  readonly membership: Membership;
  readonly counters: SwimCounters;
  readonly #node: WeftLibp2p;
  readonly #log: Logger;
  readonly #listeners: MemberChangeListener[] = [];
  readonly #reapedListeners: MemberReapedListener[] = [];
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;

  private constructor(options: LivenessOptions) {
    this.#node = options.node;
    this.#log = options.logger.child({ component: 'membership' });
    // Seeded from the OS: production needs unpredictability, the simulator seeds its own.
    this.membership = new Membership({ self: { id: options.selfId, address: options.selfAddress }, rng: mulberry32(randomInt(2 ** 31)), now: Date.now(), claims: options.claims });
    this.counters = new SwimCounters(options.selfId, this.membership.member(options.selfId)?.incarnation ?? 0);
  }

  static async start(options: LivenessOptions): Promise<Liveness> {
    const liveness = new Liveness(options);
    await registerSwim(options.node, {
      nodeIdOfPeer: options.nodeIdOfPeer,
      receive: (from, message) => {
        liveness.counters.receivedMessage(message);
        liveness.#apply(liveness.membership.handle(Date.now(), from, message));
      },
      onError: (error, peer) => liveness.#log.debug({ peer, err: error.message }, 'dropped a SWIM packet'),
    });
    liveness.#schedule();
    return liveness;
  }

  onChange(listener: MemberChangeListener): void {
    this.#listeners.push(listener);
  }

  /** A dead or left member was kept for the reap time and is now forgotten. */
  onReaped(listener: MemberReapedListener): void {
    this.#reapedListeners.push(listener);
  }

  view(nodeId: string): MemberView | undefined {
    return this.membership.member(nodeId);
  }

  addMember(nodeId: string, address: string): void {
    this.#apply(this.membership.addMember(Date.now(), { id: nodeId, address, incarnation: 0 }));
  }

  snapshot(): SwimSnapshot {
    return this.membership.snapshot();
  }

  mergeSnapshot(snapshot: SwimSnapshot): void {
    this.#apply(this.membership.mergeSnapshot(Date.now(), snapshot));
  }

  /** Announces "left" and keeps gossiping until the news is out (or a short deadline passes). */
  async leave(): Promise<void> {
    this.#apply(this.membership.leave(Date.now()));
    const deadline = Date.now() + LEAVE_DRAIN_MS;
    while (this.membership.pendingBroadcasts > 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  #apply(effects: Effect[]): void {
    if (this.#stopped) return;
    for (const effect of effects) {
      this.counters.effect(effect);
      if (effect.kind === 'send') {
        sendSwim(this.#node, effect.address, effect.message).catch((error: Error) =>
          this.#log.trace({ to: effect.to, err: error.message }, 'SWIM send failed (counts as a lost packet)'),
        );
      } else if (effect.kind === 'member-changed') {
        const { member, previous } = effect;
        if (member.state !== previous) this.#log.info({ node: member.id, state: member.state, incarnation: member.incarnation, previous }, 'member state changed');
        for (const listener of this.#listeners) listener(member, previous);
      } else if (effect.kind === 'member-reaped') {
        for (const listener of this.#reapedListeners) listener(effect.id);
      }
    }
    this.#schedule();
  }

  #schedule(): void {
    if (this.#stopped) return;
    if (this.#timer) clearTimeout(this.#timer);
    const delay = Math.min(MAX_TICK_DELAY_MS, Math.max(0, this.membership.nextDeadline() - Date.now()));
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#apply(this.membership.tick(Date.now()));
    }, delay);
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
  }
}
