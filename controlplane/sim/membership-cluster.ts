// A cluster of real Membership instances on the simulator, plus the host
// duties a test needs to play: bootstrap, crash/restart, push-pull.

import type { MembershipConfig } from '../membership/config.ts';
import type { Effect } from '../membership/effects.ts';
import type { MemberView } from '../membership/member-table.ts';
import { Membership } from '../membership/membership.ts';
import { UNSIGNED_CLAIMS } from '../membership/claim-signing.ts';
import type { MemberState, SwimMessage } from '../membership/messages.ts';
import { deriveSeed, mulberry32 } from '../membership/rng.ts';
import { MembershipNode } from './membership-node.ts';
import type { NetworkConfig } from './network.ts';
import { Simulator } from './simulator.ts';

export interface ClusterOptions {
  n: number;
  seed: number;
  config?: Partial<MembershipConfig>;
  network?: Partial<NetworkConfig>;
  /**
   * full: every node starts at t = 0 knowing every other (a settled cluster).
   * join: node i starts at i * joinSpacingMs knowing nobody and joins by
   * push-pull with n0, as the agent does with its join response.
   */
  bootstrap?: 'full' | 'join';
  joinSpacingMs?: number;
}

export interface ChangeRecord {
  at: number;
  observer: string;
  member: MemberView;
  previous: MemberState | null;
}

export type ChangeListener = (change: ChangeRecord) => void;

export class MembershipCluster {
  readonly sim: Simulator<SwimMessage, MembershipNode>;
  readonly ids: readonly string[];
  readonly #options: ClusterOptions;
  readonly #listeners: ChangeListener[] = [];
  readonly #lives = new Map<string, number>();

  constructor(options: ClusterOptions) {
    this.#options = options;
    this.sim = new Simulator({ seed: options.seed, network: options.network ?? {} });
    this.ids = Array.from({ length: options.n }, (_, i) => `n${i}`);
    if ((options.bootstrap ?? 'full') === 'full') this.#bootstrapFull();
    else this.#bootstrapJoin(options.joinSpacingMs ?? 50);
  }

  static address(id: string): string {
    return `sim://${id}`;
  }

  onChange(listener: ChangeListener): void {
    this.#listeners.push(listener);
  }

  membership(id: string): Membership {
    const node = this.sim.node(id);
    if (node === undefined) throw new Error(`cluster: no node ${id}`);
    return node.membership;
  }

  /** What `observer` currently believes about `target`. */
  stateOf(observer: string, target: string): MemberState | undefined {
    return this.membership(observer).member(target)?.state;
  }

  upIds(): string[] {
    return this.ids.filter((id) => this.sim.isUp(id));
  }

  crash(id: string): void {
    this.sim.crash(id);
  }

  /** Restarts `id` with fresh state (incarnation 0) and joins it through `via`. */
  restart(id: string, via: string): void {
    this.sim.restart(this.#createNode(id, this.sim.now));
    this.pushPull(id, via);
  }

  /**
   * One push-pull exchange as the agent performs it over a stream: `a` sends
   * its snapshot; `b` merges it and answers with its snapshot taken *after*
   * merging, so refutations triggered by a's view travel straight back.
   * Skipped if the peers cannot reach each other (the dial fails).
   */
  pushPull(a: string, b: string): void {
    const sim = this.sim;
    if (!sim.isUp(a) || !sim.isUp(b) || !sim.network.canReach(a, b)) return;
    const oneWay = sim.network.config.latencyMs;
    const fromA = this.membership(a).snapshot();
    sim.at(sim.now + oneWay, () => {
      if (!sim.isUp(b)) return;
      sim.invoke(b, (node, now) => node.route(now, node.membership.mergeSnapshot(now, fromA)));
      const fromB = this.membership(b).snapshot();
      sim.at(sim.now + oneWay, () => {
        sim.invoke(a, (node, now) => node.route(now, node.membership.mergeSnapshot(now, fromB)));
      });
    });
  }

  /** Every up node sees every other up node alive, and every down node not alive. */
  converged(): boolean {
    const up = this.upIds();
    for (const observer of up) {
      const m = this.membership(observer);
      for (const target of this.ids) {
        if (target === observer) continue;
        const state = m.member(target)?.state;
        if (this.sim.isUp(target) ? state !== 'alive' : state === 'alive' || state === 'suspect') return false;
      }
    }
    return true;
  }

  #bootstrapFull(): void {
    const nodes = this.ids.map((id) => this.#createNode(id, 0));
    for (const node of nodes) {
      for (const id of this.ids) {
        if (id === node.id) continue;
        node.route(0, node.membership.addMember(0, { id, address: MembershipCluster.address(id), incarnation: 0 }));
      }
      this.sim.add(node);
    }
  }

  #bootstrapJoin(spacingMs: number): void {
    const [seed, ...rest] = this.ids;
    if (seed === undefined) return;
    this.sim.add(this.#createNode(seed, 0));
    rest.forEach((id, i) => {
      const at = (i + 1) * spacingMs;
      this.sim.at(at, () => {
        this.sim.add(this.#createNode(id, at));
        this.pushPull(id, seed);
      });
    });
  }

  #createNode(id: string, now: number): MembershipNode {
    const life = (this.#lives.get(id) ?? 0) + 1;
    this.#lives.set(id, life);
    const index = this.ids.indexOf(id);
    const rng = mulberry32(deriveSeed(deriveSeed(this.#options.seed, index), life));
    const membership = new Membership({
      self: { id, address: MembershipCluster.address(id) },
      config: this.#options.config ?? {},
      rng,
      now,
      // Simulated nodes have no keys: the protocol as it ran before claims were signed.
      claims: UNSIGNED_CLAIMS,
    });
    return new MembershipNode(membership, (observer, at, effect) => this.#emit(observer, at, effect));
  }

  #emit(observer: string, at: number, effect: Effect): void {
    if (effect.kind !== 'member-changed') return;
    const change: ChangeRecord = { at, observer, member: effect.member, previous: effect.previous };
    for (const listener of this.#listeners) listener(change);
  }
}
