// Every membership tunable, with the reason for its default. The targets
// these were tuned for in the simulator (bench/failure-detection.ts):
// crash -> dead on every other node p50 <= 3 s and max <= 6 s at N = 10,
// and no false "dead" at 10% packet loss over 10 minutes.

export interface MembershipConfig {
  probeIntervalMs: number;
  probeTimeoutMs: number;
  indirectChecks: number;
  directRetry: boolean;
  nack: boolean;
  suspicionMult: number;
  suspicionMaxTimeoutMult: number;
  suspicionConfirmations: number;
  retransmitMult: number;
  gossipIntervalMs: number;
  gossipNodes: number;
  gossipToTheDeadMs: number;
  messageBudgetBytes: number;
  awarenessMaxMultiplier: number;
  lateTimerMs: number;
  reapMs: number;
  tickMs: number;
}

export const DEFAULT_MEMBERSHIP_CONFIG: Readonly<MembershipConfig> = Object.freeze({
  // One probe per node per interval; the per-node load is constant in N.
  // memberlist's LAN profile uses 1 s and lands at ~6 s detection; half of
  // that is still ~4 small messages per second per node, cheap on a LAN.
  probeIntervalMs: 500,
  // Direct ack deadline. LAN round trips are < 1 ms, but an event-loop stall
  // (GC, a burst of gossipsub signing) of ~100 ms must not look like a dead
  // peer. Must leave room in the interval for the indirect round (validated).
  probeTimeoutMs: 200,
  // Relays asked after a missed direct ack (SWIM's k). Three independent
  // paths make a false suspicion at 10% loss ~100x rarer than one path.
  indirectChecks: 3,
  // Resend the direct ping when going indirect (memberlist does the same
  // over TCP): one extra packet removes most loss-induced suspicions.
  directRetry: true,
  // Lifeguard nacks: relays that answer "target silent" show our own link is
  // fine, so missing nacks (not missing acks) raise our health score.
  nack: true,
  // Suspicion lower bound = mult * log10(N) * probeInterval (Lifeguard/
  // memberlist formula): 1.5 s at N = 10, 3 s at N = 100, 4.5 s at N = 1000.
  // The lower bound only applies once confirmations arrive, and the suspect
  // hears of a suspicion within ~100 ms (buddy system + gossip), so 3 is
  // enough; 4 (memberlist) put the N = 10 median right at the 3 s target.
  suspicionMult: 3,
  // Upper bound = 6 * lower bound, used when nobody confirms: a lone
  // suspicion (lossy link, slow suspecter) gets ample time to be refuted.
  suspicionMaxTimeoutMult: 6,
  // Independent confirmations that shrink the timeout to the lower bound
  // (memberlist derives it as suspicionMult - 2). A real crash is confirmed
  // by other probers within about one probe round; two loss-induced
  // failures of the same node before its refutation spreads are rare.
  suspicionConfirmations: 2,
  // Each update is sent retransmitMult * ceil(log10(N + 1)) times: enough
  // for an epidemic to reach everyone w.h.p. even with 10% loss.
  retransmitMult: 4,
  // Extra gossip rounds while updates are pending (nothing is sent when the
  // queue is empty). Piggybacking alone moves news one hop per probe
  // interval; 200 ms x 3 targets spreads a death to N = 100 in < 1 s.
  gossipIntervalMs: 200,
  gossipNodes: 3,
  // Keep gossiping to recently dead nodes so a falsely declared node learns
  // it and refutes (memberlist GossipToTheDeadTime).
  gossipToTheDeadMs: 30_000,
  // Updates per message are capped to keep each probe within one Ethernet
  // frame: a ping never waits for a second TCP segment.
  messageBudgetBytes: 1400,
  // Lifeguard LHA: a struggling node stretches its own probe interval and
  // timeout up to 8x (memberlist's AwarenessMaxMultiplier) instead of
  // accusing healthy peers.
  awarenessMaxMultiplier: 8,
  // A tick that comes this much after the deadline it was asked for means
  // our own event loop ran late (CPU starvation, a long GC or synchronous
  // burst): that is evidence about us, not about the peer we were waiting
  // for. Its answer may be sitting unread in a socket, so the due probe
  // step or suspicion expiry gets one grace of probeTimeoutMs instead of
  // counting as a failure, and our health score rises (Lifeguard LHA).
  // Timer error on an idle host is ~1 ms, and one fixed tick (tickMs) is 20.
  lateTimerMs: 100,
  // Dead and left members are kept 24 h (Serf's reconnect and tombstone
  // timeouts): a host back from a reboot or an overnight outage re-enters
  // with a higher incarnation and its table entries are still there
  // (hidden). A record is ~100 bytes, so 24 h of churn costs little.
  reapMs: 24 * 60 * 60 * 1000,
  // For hosts that tick on a fixed period instead of at nextDeadline():
  // timer precision is one tick, small next to probeTimeoutMs.
  tickMs: 20,
});

/** Defaults overridden by `overrides`, checked for combinations that cannot work. */
export function resolveConfig(overrides: Partial<MembershipConfig> = {}): MembershipConfig {
  const config: MembershipConfig = { ...DEFAULT_MEMBERSHIP_CONFIG, ...overrides };
  for (const [key, value] of Object.entries(config)) {
    if (typeof value === 'number' && !(value >= 0)) {
      throw new RangeError(`membership config ${key} must be a non-negative number, got ${value}`);
    }
  }
  // A relay waits probeTimeoutMs for the target before it nacks; that nack
  // must reach us before our probe interval ends or it never counts.
  if (config.probeIntervalMs < 2 * config.probeTimeoutMs) {
    throw new RangeError(
      `membership config probeIntervalMs (${config.probeIntervalMs}) must be at least twice probeTimeoutMs (${config.probeTimeoutMs})`,
    );
  }
  if (config.awarenessMaxMultiplier < 1) {
    throw new RangeError('membership config awarenessMaxMultiplier must be at least 1');
  }
  return config;
}
