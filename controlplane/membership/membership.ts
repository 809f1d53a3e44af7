// SWIM membership with Lifeguard's refinements, as a pure state machine.
// The host feeds it messages (handle) and time (tick) and carries out the
// returned effects; see docs/membership.md for the protocol and the API.
// This file is the protocol's active side — probing and dissemination —
// and the public API; local-view.ts owns the view and its rules.

import { Awareness } from './awareness.ts';
import { BroadcastQueue, retransmitLimit } from './broadcast-queue.ts';
import type { MembershipConfig } from './config.ts';
import { resolveConfig } from './config.ts';
import type { Effect, KnownMember, SelfInfo } from './effects.ts';
import type { ClaimSigning } from './claim-signing.ts';
import { GOSSIPED, LocalView, OBSERVED, SEEDED } from './local-view.ts';
import type { MemberView } from './member-table.ts';
import { isActive } from './member-table.ts';
import type { Ack, MemberUpdate, Ping, PingReq, Snapshot, SwimMessage } from './messages.ts';
import type { ActiveProbe } from './prober.ts';
import { Prober } from './prober.ts';
import { Relays } from './relays.ts';
import { MAX_INCARNATION } from './update-rules.ts';
import type { Rng } from './rng.ts';
import { randomInt, sample } from './rng.ts';

export interface MembershipOptions {
  self: SelfInfo;
  config?: Partial<MembershipConfig>;
  rng: Rng;
  now: number;
  /** Signs our incarnations and verifies others' (UNSIGNED_CLAIMS where there are no node keys). */
  claims: ClaimSigning;
}

export class Membership {
  readonly config: MembershipConfig;
  readonly #rng: Rng;
  readonly #view: LocalView;
  readonly #queue = new BroadcastQueue();
  readonly #awareness: Awareness;
  readonly #prober = new Prober();
  readonly #relays = new Relays();
  #nextProbeAt: number;
  #nextGossipAt: number;
  #seq: number;
  #out: Effect[] = [];
  // When the host last called in: after that call it should have ticked at
  // max(this, nextDeadline()), which is how a late tick is recognised.
  #lastCallAt: number;
  #nextLatePenaltyAt = -Infinity;

  constructor(options: MembershipOptions) {
    this.config = resolveConfig(options.config);
    this.#rng = options.rng;
    this.#awareness = new Awareness(this.config.awarenessMaxMultiplier);
    const { id, address, incarnation = 0 } = options.self;
    this.#view = new LocalView({
      config: this.config,
      rng: this.#rng,
      self: { id, address, state: 'alive', incarnation, stateChangedAt: options.now },
      queue: this.#queue,
      awareness: this.#awareness,
      emit: (effect) => this.#out.push(effect),
      claims: options.claims,
    });
    // Announce ourselves on the first messages we send.
    this.#queue.enqueue(this.#view.selfUpdate());
    // Stagger the first probe so nodes started together do not probe in step.
    this.#nextProbeAt = options.now + randomInt(this.#rng, this.config.probeIntervalMs);
    this.#nextGossipAt = options.now;
    // A random first sequence number keeps acks from our previous life
    // (before a restart) from matching our new probes.
    this.#seq = randomInt(this.#rng, 2 ** 32);
    this.#lastCallAt = options.now;
  }

  get id(): string {
    return this.#view.selfId;
  }

  /** Lifeguard health score: 0 is healthy; timeouts are scaled by score + 1. */
  get awarenessScore(): number {
    return this.#awareness.score;
  }

  /** Updates waiting to be disseminated. */
  get pendingBroadcasts(): number {
    return this.#queue.size;
  }

  /** Signature verifications performed so far (each new node and incarnation costs one). */
  get claimVerifications(): number {
    return this.#view.signed.verifications;
  }

  member(id: string): MemberView | undefined {
    const record = this.#view.table.get(id);
    return record === undefined ? undefined : { ...record };
  }

  /** Every known member, self included, sorted by ID. */
  members(): MemberView[] {
    const all = [...this.#view.table.values()].map((r) => ({ ...r }));
    return all.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  /** A peer learned out of band (join response, configuration). Not gossiped: they know it. */
  addMember(now: number, member: KnownMember): Effect[] {
    this.#lastCallAt = now;
    if (member.id !== this.id) {
      const { id, address, incarnation } = member;
      this.#view.consider(now, { node: id, address, incarnation, state: 'alive', from: id }, SEEDED);
    }
    return this.#flush();
  }

  handle(now: number, from: string, message: SwimMessage): Effect[] {
    this.#lastCallAt = now;
    this.#view.beginBatch();
    for (const update of message.updates) this.#view.consider(now, update, GOSSIPED, from);
    switch (message.kind) {
      case 'ping':
        this.#onPing(from, message);
        break;
      case 'pingReq':
        this.#onPingReq(now, from, message);
        break;
      case 'ack':
        this.#onAck(message);
        break;
      case 'nack':
        this.#prober.nacked(message.seq);
        break;
      case 'gossip':
        break;
    }
    return this.#flush();
  }

  /** Drives probes, suspicion timers, gossip and reaping. Call at nextDeadline() or every config.tickMs. */
  tick(now: number): Effect[] {
    this.#noticeLateness(now);
    this.#lastCallAt = now;
    this.#expireRelays(now);
    if (!this.#hasLeft()) this.#advanceProbe(now);
    // After probing: a failed probe may confirm a suspicion into the past.
    this.#view.expireSuspicions(now);
    // After both: whatever they decided goes out in this same tick.
    this.#gossip(now);
    this.#view.reap(now);
    return this.#flush();
  }

  /** Earliest time at which tick() has work to do (may be <= now: tick at once). */
  nextDeadline(): number {
    let at = Math.min(this.#view.nextDeadline(), this.#relays.earliest());
    if (!this.#hasLeft()) at = Math.min(at, this.#nextProbeAt, this.#prober.deadline());
    if (this.#queue.size > 0) at = Math.min(at, this.#nextGossipAt);
    return at;
  }

  /**
   * Graceful leave: announce `left` with a bumped incarnation (so it beats
   * any alive/suspect about us) and stop probing. Keep calling tick() until
   * pendingBroadcasts is 0 (about a second), then shut down.
   */
  leave(now: number): Effect[] {
    this.#lastCallAt = now;
    const self = this.#view.self();
    if (self.state === 'left') return [];
    this.#prober.cancel();
    // At the ceiling the same incarnation still does: left outranks alive and suspect at equal incarnation.
    const incarnation = Math.min(self.incarnation + 1, MAX_INCARNATION);
    this.#view.setSelf({ ...self, state: 'left', incarnation, stateChangedAt: now });
    this.#nextGossipAt = now;
    this.#gossip(now);
    return this.#flush();
  }

  /** Full state for push-pull anti-entropy. */
  snapshot(): Snapshot {
    return this.#view.snapshot();
  }

  /** Merges a peer's snapshot (join, reconnect after a partition, periodic sync). */
  mergeSnapshot(now: number, snapshot: Snapshot): Effect[] {
    this.#lastCallAt = now;
    this.#view.beginBatch();
    this.#view.mergeSnapshot(now, snapshot);
    return this.#flush();
  }

  // ---- local health: our own timers ----

  /**
   * Lifeguard's local health awareness, applied to our own clock: a tick
   * that comes well after the deadline it was asked for shows that this
   * process was starved (CPU, GC, a synchronous burst). Whatever we were
   * waiting for may have arrived meanwhile and still be unread, because
   * timers run before I/O callbacks; so the due probe step and expired
   * suspicions get one grace of probeTimeoutMs, and our score rises
   * (at most once per probe interval) so our own timeouts stretch.
   */
  #noticeLateness(now: number): void {
    const due = Math.max(this.#lastCallAt, this.nextDeadline());
    if (!(now - due > this.config.lateTimerMs)) return;
    if (now >= this.#nextLatePenaltyAt) {
      this.#awareness.apply(1);
      this.#nextLatePenaltyAt = now + this.config.probeIntervalMs;
    }
    const until = now + this.config.probeTimeoutMs;
    this.#prober.defer(now, until);
    this.#view.deferSuspicions(now, until);
  }

  // ---- probing ----

  #advanceProbe(now: number): void {
    const step = this.#prober.due(now);
    if (step?.kind === 'go-indirect') this.#goIndirect(step.probe);
    else if (step?.kind === 'failed') this.#probeFailed(now, step.probe, step.awarenessDelta);
    if (this.#prober.active === null && now >= this.#nextProbeAt) this.#startProbe(now);
  }

  #startProbe(now: number): void {
    const c = this.config;
    this.#nextProbeAt = now + this.#awareness.scale(c.probeIntervalMs);
    const target = this.#view.order.next(this.#rng, (id) => this.#view.isProbeable(id));
    if (target === undefined) return;
    const address = this.#addressOf(target);
    const seq = this.#nextSeq();
    this.#prober.start(target, address, seq, now + this.#awareness.scale(c.probeTimeoutMs), this.#nextProbeAt);
    this.#sendPing(target, address, seq);
  }

  #goIndirect(probe: ActiveProbe): void {
    const c = this.config;
    const table = this.#view.table;
    const relays = sample(this.#rng, this.#view.order.ids, c.indirectChecks, (id) => id !== probe.target && table.get(id)?.state === 'alive');
    for (const relay of relays) {
      const request: PingReq = {
        kind: 'pingReq',
        seq: probe.seq,
        target: probe.target,
        targetAddress: probe.targetAddress,
        sourceAddress: this.#view.self().address,
        nack: c.nack,
        updates: this.#piggyback(),
      };
      this.#send(relay, this.#addressOf(relay), request);
    }
    if (c.directRetry) this.#sendPing(probe.target, probe.targetAddress, probe.seq);
    this.#prober.wentIndirect(relays.length, c.nack);
  }

  #probeFailed(now: number, probe: ActiveProbe, awarenessDelta: number): void {
    this.#awareness.apply(awarenessDelta);
    const record = this.#view.table.get(probe.target);
    if (record === undefined || !isActive(record.state)) return;
    this.#view.consider(now, this.#view.claimAbout(record, 'suspect', this.id), OBSERVED);
  }

  #onPing(from: string, ping: Ping): void {
    // A ping meant for whoever had this address before us: staying silent
    // lets the prober find out that its target is gone.
    if (ping.target !== this.id) return;
    this.#send(from, ping.sourceAddress, { kind: 'ack', seq: ping.seq, updates: this.#piggyback() });
  }

  #onPingReq(now: number, from: string, request: PingReq): void {
    if (request.target === this.id) return;
    const seq = this.#nextSeq();
    this.#relays.add(seq, {
      requester: from,
      requesterAddress: request.sourceAddress,
      requesterSeq: request.seq,
      nack: request.nack,
      // Our own unscaled timeout: the nack must reach the requester before
      // its probe interval ends (resolveConfig checks interval >= 2x timeout).
      deadline: now + this.config.probeTimeoutMs,
    });
    this.#sendPing(request.target, request.targetAddress, seq);
  }

  #onAck(ack: Ack): void {
    const delta = this.#prober.acked(ack.seq);
    if (delta !== null) {
      this.#awareness.apply(delta);
      return;
    }
    const relay = this.#relays.take(ack.seq);
    if (relay === undefined) return;
    this.#send(relay.requester, relay.requesterAddress, { kind: 'ack', seq: relay.requesterSeq, updates: this.#piggyback() });
  }

  #expireRelays(now: number): void {
    for (const relay of this.#relays.expire(now)) {
      if (!relay.nack) continue;
      this.#send(relay.requester, relay.requesterAddress, { kind: 'nack', seq: relay.requesterSeq, updates: this.#piggyback() });
    }
  }

  // ---- dissemination ----

  #gossip(now: number): void {
    if (this.#queue.size === 0 || now < this.#nextGossipAt) return;
    this.#nextGossipAt = now + this.config.gossipIntervalMs;
    const targets = sample(this.#rng, this.#view.order.ids, this.config.gossipNodes, (id) => this.#isGossipTarget(now, id));
    for (const target of targets) {
      const updates = this.#piggyback();
      if (updates.length === 0) break;
      this.#send(target, this.#addressOf(target), { kind: 'gossip', updates });
    }
  }

  /** Active members, and the recently dead so a wrongly declared node hears of it. */
  #isGossipTarget(now: number, id: string): boolean {
    const record = this.#view.table.get(id);
    if (record === undefined) return false;
    if (isActive(record.state)) return true;
    return record.state === 'dead' && now - record.stateChangedAt < this.config.gossipToTheDeadMs;
  }

  #piggyback(): MemberUpdate[] {
    const limit = retransmitLimit(this.config.retransmitMult, this.#view.table.activeCount);
    return this.#queue.take(this.config.messageBudgetBytes, limit);
  }

  /**
   * Lifeguard's buddy system, extended to the dead: whatever we send to a
   * member we hold suspect or dead carries that verdict, because that
   * member is the one who can refute it. Epidemic gossip alone reaches a
   * given node only with high probability, and under loss the suspect is
   * sometimes the one node it misses.
   */
  #tellAboutThemselves(to: string, updates: MemberUpdate[]): void {
    const record = this.#view.table.get(to);
    if (record === undefined || (record.state !== 'suspect' && record.state !== 'dead')) return;
    if (updates.some((u) => u.node === to)) return;
    updates.push(this.#view.claimAbout(record, record.state, this.id));
  }

  // ---- plumbing ----

  #sendPing(target: string, address: string, seq: number): void {
    const ping: Ping = { kind: 'ping', seq, target, sourceAddress: this.#view.self().address, updates: this.#piggyback() };
    this.#send(target, address, ping);
  }

  #send(to: string, address: string, message: SwimMessage): void {
    this.#tellAboutThemselves(to, message.updates);
    this.#out.push({ kind: 'send', to, address, message });
  }

  #addressOf(id: string): string {
    return this.#view.table.get(id)?.address ?? '';
  }

  #flush(): Effect[] {
    const out = this.#out;
    this.#out = [];
    return out;
  }

  #nextSeq(): number {
    this.#seq = (this.#seq + 1) >>> 0;
    return this.#seq;
  }

  #hasLeft(): boolean {
    return this.#view.self().state === 'left';
  }
}
