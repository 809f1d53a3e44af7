// The local membership view and how facts change it: claims are applied by
// the update rules, suspicions run their Lifeguard timers, claims about
// ourselves are refuted, and the long dead are forgotten. Probing and
// dissemination (membership.ts) feed it facts and read it.

import type { Awareness } from './awareness.ts';
import type { BroadcastQueue } from './broadcast-queue.ts';
import type { ClaimSigning } from './claim-signing.ts';
import { SignedIncarnations } from './claim-signing.ts';
import type { MembershipConfig } from './config.ts';
import type { Effect } from './effects.ts';
import type { MemberView } from './member-table.ts';
import { MemberTable, isActive } from './member-table.ts';
import type { MemberState, MemberUpdate, Snapshot } from './messages.ts';
import { isValidUpdate } from './messages.ts';
import { ProbeOrder } from './probe-order.ts';
import type { Rng } from './rng.ts';
import { Suspicion, expectedConfirmations, suspicionBounds } from './suspicion.ts';
import { MAX_INCARNATION, implausibleIncarnation, judgeOther, judgeSelf } from './update-rules.ts';

/**
 * gossip: re-broadcast what we adopt. confirm: count suspect claims as
 * confirmations. vouched: the host vouches for the incarnation, so it needs
 * no signature of the member's.
 */
export interface Provenance {
  gossip: boolean;
  confirm: boolean;
  vouched: boolean;
}

export const GOSSIPED: Provenance = { gossip: true, confirm: true, vouched: false };
/** Peers the host learned out of band (join response): everyone knows them already. */
export const SEEDED: Provenance = { gossip: false, confirm: false, vouched: true };
// Snapshots repeat beliefs, not fresh observations: spread what changed,
// but a stale belief held by many peers must not count as many witnesses.
export const SNAPSHOT: Provenance = { gossip: true, confirm: false, vouched: false };
/** Our own observation (a failed probe) about a member at the incarnation we hold. */
export const OBSERVED: Provenance = { gossip: true, confirm: true, vouched: true };

export interface LocalViewOptions {
  config: MembershipConfig;
  rng: Rng;
  self: MemberView;
  queue: BroadcastQueue;
  awareness: Awareness;
  emit: (effect: Effect) => void;
  claims: ClaimSigning;
}

export class LocalView {
  readonly table = new MemberTable();
  readonly order = new ProbeOrder();
  readonly selfId: string;
  readonly #config: MembershipConfig;
  readonly #rng: Rng;
  readonly #queue: BroadcastQueue;
  readonly #awareness: Awareness;
  readonly #emit: (effect: Effect) => void;
  readonly #suspicions = new Map<string, Suspicion>();
  readonly signed: SignedIncarnations;
  // Lower bounds on the next suspicion expiry / reap, so ticks scan only
  // when something may be due; exact minima would need a heap.
  #suspicionCheckAt = Infinity;
  #reapCheckAt = Infinity;

  constructor(options: LocalViewOptions) {
    this.#config = options.config;
    this.#rng = options.rng;
    this.#queue = options.queue;
    this.#awareness = options.awareness;
    this.#emit = options.emit;
    this.selfId = options.self.id;
    this.signed = new SignedIncarnations(options.claims);
    this.table.set(options.self);
  }

  self(): MemberView {
    return this.table.get(this.selfId) as MemberView;
  }

  selfUpdate(): MemberUpdate {
    const self = this.self();
    const update: MemberUpdate = { node: self.id, address: self.address, incarnation: self.incarnation, state: self.state, from: self.id };
    const { signature } = this.signed.signOwn(self.id, self.incarnation, self.address);
    return signature.length === 0 ? update : { ...update, signature };
  }

  /**
   * A claim about `record` at the incarnation we hold, carrying the
   * member's signature of it when we have one, so that receivers who have
   * not yet seen that incarnation accept it.
   */
  claimAbout(record: MemberView, state: MemberState, from: string): MemberUpdate {
    const update: MemberUpdate = { node: record.id, address: record.address, incarnation: record.incarnation, state, from };
    return this.#withSignature(update);
  }

  /** A new message or snapshot starts (see SignedIncarnations.beginBatch). */
  beginBatch(): void {
    this.signed.beginBatch();
  }

  /** Replaces our own record and announces it. */
  setSelf(record: MemberView): void {
    const previous = this.self().state;
    this.table.set(record);
    this.#queue.enqueue(this.selfUpdate());
    this.#changed(record, previous);
  }

  /** Earliest suspicion expiry or reap (a lower bound). */
  nextDeadline(): number {
    return Math.min(this.#suspicionCheckAt, this.#reapCheckAt);
  }

  isProbeable(id: string): boolean {
    const record = this.table.get(id);
    return record !== undefined && isActive(record.state);
  }

  /** `sender`: the peer that handed us this update, when it came in a message. */
  consider(now: number, update: MemberUpdate, provenance: Provenance, sender?: string): void {
    if (!isValidUpdate(update)) return;
    if (implausibleIncarnation(update.incarnation, this.table.get(update.node)?.incarnation) !== undefined) return;
    if (!this.#signedByMember(update, provenance)) return;
    if (update.node === this.selfId) {
      const verdict = judgeSelf(this.self(), update);
      if (verdict === 'refute') this.#refute(update);
      else if (verdict === 'reannounce') this.#reannounce(sender);
      return;
    }
    const current = this.table.get(update.node);
    const verdict = judgeOther(current, update);
    if (verdict === 'apply') this.#apply(now, current, update, provenance.gossip);
    else if (verdict === 'confirm' && provenance.confirm) this.#confirm(update);
  }

  mergeSnapshot(now: number, snapshot: Snapshot): void {
    for (const entry of snapshot.members) {
      // A remote "dead" only makes us suspect: the member still gets the
      // chance to refute that our own verdict would deny it.
      const state: MemberState = entry.state === 'dead' ? 'suspect' : entry.state;
      this.consider(now, { ...entry, state, from: snapshot.from }, SNAPSHOT);
    }
  }

  snapshot(): Snapshot {
    const members = [...this.table.values()].map((r) => {
      const { node, address, incarnation, state, signature } = r.id === this.selfId ? this.selfUpdate() : this.claimAbout(r, r.state, this.selfId);
      return signature === undefined || signature.length === 0 ? { node, address, incarnation, state } : { node, address, incarnation, state, signature };
    });
    return { from: this.selfId, members };
  }

  expireSuspicions(now: number): void {
    if (now < this.#suspicionCheckAt) return;
    let next = Infinity;
    for (const [id, suspicion] of this.#suspicions) {
      const deadline = suspicion.deadline();
      if (deadline > now) {
        next = Math.min(next, deadline);
        continue;
      }
      this.#suspicions.delete(id);
      const record = this.table.get(id);
      if (record?.state !== 'suspect' || record.incarnation !== suspicion.incarnation) continue;
      const dead = this.claimAbout(record, 'dead', this.selfId);
      this.#apply(now, record, dead, true);
    }
    this.#suspicionCheckAt = next;
  }

  /** Our tick came late: suspicions that ran out meanwhile get one grace until `until`. */
  deferSuspicions(now: number, until: number): void {
    if (now < this.#suspicionCheckAt) return;
    for (const suspicion of this.#suspicions.values()) suspicion.defer(now, until);
  }

  reap(now: number): void {
    if (now < this.#reapCheckAt) return;
    let next = Infinity;
    for (const record of this.table.values()) {
      if (isActive(record.state) || record.id === this.selfId) continue;
      const at = record.stateChangedAt + this.#config.reapMs;
      if (at > now) {
        next = Math.min(next, at);
        continue;
      }
      this.table.delete(record.id);
      this.order.remove(record.id);
      this.signed.forget(record.id);
      this.#emit({ kind: 'member-reaped', id: record.id });
    }
    this.#reapCheckAt = next;
  }

  #apply(now: number, current: MemberView | undefined, update: MemberUpdate, gossip: boolean): void {
    // Only the member itself (alive) states its address; accusations may
    // carry a stale one, unless they carry the member's signature of it.
    const vouched = this.signed.get(update.node);
    const signedAddress = vouched !== undefined && vouched.incarnation === update.incarnation && vouched.signature.length > 0 ? vouched.address : undefined;
    const address = update.state === 'alive' || current === undefined ? update.address : (signedAddress ?? current.address);
    const record: MemberView = {
      id: update.node,
      address,
      state: update.state,
      incarnation: update.incarnation,
      stateChangedAt: current?.state === update.state ? current.stateChangedAt : now,
    };
    this.table.set(record);
    if (current === undefined) this.order.insert(this.#rng, record.id);
    this.#suspicions.delete(record.id);
    if (record.state === 'suspect') this.#startSuspicion(now, record, update.from);
    if (!isActive(record.state)) this.#reapCheckAt = Math.min(this.#reapCheckAt, now + this.#config.reapMs);
    if (gossip) this.#queue.enqueue(this.#withSignature({ ...update, address }));
    this.#changed(record, current?.state ?? null);
  }

  #startSuspicion(now: number, record: MemberView, from: string): void {
    const n = this.table.activeCount;
    const c = this.#config;
    const bounds = suspicionBounds(c.suspicionMult, c.suspicionMaxTimeoutMult, c.probeIntervalMs, n);
    const suspicion = new Suspicion(now, record.incarnation, from, bounds, expectedConfirmations(c.suspicionConfirmations, n));
    this.#suspicions.set(record.id, suspicion);
    this.#suspicionCheckAt = Math.min(this.#suspicionCheckAt, suspicion.deadline());
  }

  #confirm(update: MemberUpdate): void {
    const suspicion = this.#suspicions.get(update.node);
    if (suspicion === undefined || !suspicion.confirm(update.from)) return;
    // Pass the new voice on so that other suspecters shorten their timers too.
    this.#queue.enqueue(update);
    this.#suspicionCheckAt = Math.min(this.#suspicionCheckAt, suspicion.deadline());
  }

  /** Someone believes we are suspect/dead/left, or speaks for us: outbid them. */
  #refute(claim: MemberUpdate): void {
    const self = this.self();
    const incarnation = Math.max(self.incarnation, claim.incarnation) + 1;
    // Only reachable by a long run of forged claims, each within the jump bound:
    // we cannot outbid this one; wrapping to 0 would lose every later one too.
    if (incarnation > MAX_INCARNATION) return;
    this.setSelf({ ...self, incarnation });
    // Being suspected is a hint that we are the slow one (Lifeguard).
    if (claim.state !== 'alive') this.#awareness.apply(1);
  }

  /**
   * Someone still holds an accusation we already refuted: they missed our
   * refutation. Epidemic gossip dies out once everyone else has it, so
   * answer the sender directly, and spread it once more in case others
   * missed it too (unless it is still spreading: re-queuing would reset its
   * transmit count on every stale copy that reaches us).
   */
  #reannounce(sender: string | undefined): void {
    const address = sender === undefined ? undefined : this.table.get(sender)?.address;
    if (sender !== undefined && address !== undefined) {
      this.#emit({ kind: 'send', to: sender, address, message: { kind: 'gossip', updates: [this.selfUpdate()] } });
    }
    if (this.#queue.pending(this.selfId) === undefined) this.#queue.enqueue(this.selfUpdate());
  }

  /**
   * Only the member raises its own incarnation: an alive claim must carry its
   * signature of (node, incarnation), and an accusation may name no
   * incarnation above the highest the member has signed, unless it carries
   * that signature too. Each new (node, incarnation) is verified once.
   */
  #signedByMember(update: MemberUpdate, provenance: Provenance): boolean {
    if (provenance.vouched) {
      if (update.node !== this.selfId) this.signed.seed(update.node, update.incarnation, update.address);
      return true;
    }
    const { node, incarnation, address, signature } = update;
    return update.state === 'alive' ? this.signed.admitsAlive(node, incarnation, address, signature) : this.signed.admits(node, incarnation, address, signature);
  }

  #withSignature(update: MemberUpdate): MemberUpdate {
    const vouched = this.signed.get(update.node);
    if (vouched === undefined || vouched.incarnation !== update.incarnation || vouched.signature.length === 0) return update;
    // The address the member signed, which an accusation may not otherwise carry.
    return { ...update, address: vouched.address, signature: vouched.signature };
  }

  #changed(member: MemberView, previous: MemberState | null): void {
    this.#emit({ kind: 'member-changed', member: { ...member }, previous });
  }
}
