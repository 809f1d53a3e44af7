// The two measurements that define membership quality, shared by the
// simulator tests and bench/failure-detection.ts: how fast a crash becomes
// "dead" everywhere, and how often a live node is wrongly declared dead.

import type { MembershipConfig } from '../membership/config.ts';
import { randomInt } from '../membership/rng.ts';
import { MembershipCluster } from './membership-cluster.ts';
import type { NetworkConfig } from './network.ts';

export interface CrashRunOptions {
  n: number;
  seed: number;
  config?: Partial<MembershipConfig>;
  network?: Partial<NetworkConfig>;
  /** Settling time before the crash (the start-up announcements die down). */
  warmupMs?: number;
  /** Give up after this long after the crash. */
  limitMs?: number;
}

export interface CrashRunResult {
  seed: number;
  n: number;
  /** Crash until the last survivor marks the victim dead; null if not within limitMs. */
  allDeadMs: number | null;
  /** Crash until the first survivor marks it dead. */
  firstDeadMs: number | null;
  /** Nodes that were up but declared dead by someone during the run. */
  falseDead: number;
}

export function runCrash(options: CrashRunOptions): CrashRunResult {
  const { n, seed } = options;
  const warmupMs = options.warmupMs ?? 5_000;
  const limitMs = options.limitMs ?? 60_000;
  const cluster = new MembershipCluster({ n, seed, config: options.config ?? {}, network: options.network ?? {} });
  const sim = cluster.sim;
  const victim = cluster.ids[randomInt(sim.rng, n)] as string;
  const deadAt = new Map<string, number>();
  let falseDead = 0;
  cluster.onChange(({ at, observer, member }) => {
    if (member.state !== 'dead') return;
    if (member.id !== victim || at < warmupMs) falseDead++;
    else if (!deadAt.has(observer)) deadAt.set(observer, at);
  });
  sim.runUntil(warmupMs);
  cluster.crash(victim);
  const done = sim.runUntilTrue(warmupMs + limitMs, () => deadAt.size === n - 1);
  const times = [...deadAt.values()];
  return {
    seed,
    n,
    allDeadMs: done ? Math.max(...times) - warmupMs : null,
    firstDeadMs: times.length > 0 ? Math.min(...times) - warmupMs : null,
    falseDead,
  };
}

export interface QuietRunOptions {
  n: number;
  seed: number;
  loss: number;
  durationMs: number;
  config?: Partial<MembershipConfig>;
}

export interface QuietRunResult {
  seed: number;
  n: number;
  loss: number;
  durationMs: number;
  /** "dead" verdicts about live nodes (every node is up: all are false). */
  falseDead: number;
  /** Distinct suspicions, as (member, incarnation): expected under loss, each refuted or turned dead. */
  suspicions: number;
  /** The same counted per observer: a suspicion that reaches every node counts N - 1 times. */
  suspectVerdicts: number;
  /** Messages sent per node per second, all kinds. */
  messagesPerNodePerSecond: number;
}

export function runQuiet(options: QuietRunOptions): QuietRunResult {
  const { n, seed, loss, durationMs } = options;
  const cluster = new MembershipCluster({ n, seed, config: options.config ?? {}, network: { loss } });
  let falseDead = 0;
  let suspectVerdicts = 0;
  const suspected = new Set<string>();
  cluster.onChange(({ member }) => {
    if (member.state === 'dead') falseDead++;
    if (member.state !== 'suspect') return;
    suspectVerdicts++;
    suspected.add(`${member.id}@${member.incarnation}`);
  });
  cluster.sim.runUntil(durationMs);
  const messagesPerNodePerSecond = cluster.sim.stats.sent / n / (durationMs / 1000);
  return { seed, n, loss, durationMs, falseDead, suspicions: suspected.size, suspectVerdicts, messagesPerNodePerSecond };
}
