// The simulated underlay: per-message latency with jitter, random loss
// (globally and per link), and partitions. Decides each message's fate at
// send time; the simulator schedules the delivery.

import type { Rng } from '../membership/rng.ts';

export interface NetworkConfig {
  /** One-way base latency. */
  latencyMs: number;
  /** Uniform jitter: latency is latencyMs ± jitterMs (never below minLatencyMs). */
  jitterMs: number;
  /** Probability that any message is lost. */
  loss: number;
}

export const DEFAULT_NETWORK: Readonly<NetworkConfig> = Object.freeze({ latencyMs: 10, jitterMs: 5, loss: 0 });

const MIN_LATENCY_MS = 0.1;

function linkKey(a: string, b: string): string {
  return a < b ? `${a}\u0000${b}` : `${b}\u0000${a}`;
}

export class SimNetwork {
  config: NetworkConfig;
  readonly #group = new Map<string, number>();
  readonly #linkLoss = new Map<string, number>();

  constructor(config: Partial<NetworkConfig> = {}) {
    this.config = { ...DEFAULT_NETWORK, ...config };
  }

  /**
   * Splits the network: nodes in different listed groups cannot talk;
   * unlisted nodes form one more group together.
   */
  partition(groups: readonly (readonly string[])[]): void {
    this.#group.clear();
    groups.forEach((members, i) => {
      for (const id of members) this.#group.set(id, i + 1);
    });
  }

  heal(): void {
    this.#group.clear();
  }

  /** Loss on one link (both directions), on top of the global loss. */
  setLinkLoss(a: string, b: string, loss: number): void {
    if (loss <= 0) this.#linkLoss.delete(linkKey(a, b));
    else this.#linkLoss.set(linkKey(a, b), loss);
  }

  canReach(from: string, to: string): boolean {
    return (this.#group.get(from) ?? 0) === (this.#group.get(to) ?? 0);
  }

  /** Delay of one message from `from` to `to`, or null if it is lost. */
  transit(rng: Rng, from: string, to: string): number | null {
    if (!this.canReach(from, to)) return null;
    if (this.config.loss > 0 && rng.next() < this.config.loss) return null;
    const link = this.#linkLoss.size === 0 ? undefined : this.#linkLoss.get(linkKey(from, to));
    if (link !== undefined && rng.next() < link) return null;
    const { latencyMs, jitterMs } = this.config;
    return Math.max(MIN_LATENCY_MS, latencyMs + (2 * rng.next() - 1) * jitterMs);
  }
}
