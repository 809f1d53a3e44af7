// Takes over the ranges of gone nodes (removed with `weft node rm`, or left
// with ranges no member took), so that they come back to the pool. The rules
// are controlplane/allocation/reclaim.ts's: only the active member with the
// smallest node ID does it, and only after every other active member has
// answered a ring sync (its current rings and the values its tables show in
// use). While a member does not answer, nothing is reclaimed: the member may
// hold a range the gone node gave it. Dead but not removed nodes are never
// reclaimed (docs/allocation.md says why).
import type { Logger } from 'pino';
import { chooseReclaimer, goneOwners, ReclaimRound, type RingState, type RingSyncRequest } from '../../controlplane/allocation/index.ts';
import type { RingSyncReply } from '../wire/allocation-codec.ts';

/** How often the reclaimer looks for gone nodes' ranges (and retries a blocked reclaim). */
export const RECLAIM_INTERVAL_MS = 2_000;
/** With nothing visibly left to reclaim, the reclaimer still asks everyone this often: a member may see gone owners this node does not. */
const REVIEW_INTERVAL_MS = 60_000;
/** Rounds per attempt: each answer naming a new space widens the next round. */
const MAX_ROUNDS = 4;

export interface ReclaimHost {
  readonly selfId: string;
  roster(): { active: string[]; gone: string[] };
  addressOf(nodeId: string): string | undefined;
  ringSync(address: string, request: RingSyncRequest): Promise<RingSyncReply>;
  /** This node's rings and the rings gone nodes last published in the allocations table. */
  knownRings(gone: ReadonlySet<string>): RingState[];
  /** Merges the members' rings into the space and takes over the gone nodes' ranges there, keeping `inUse`. Returns the tokens taken. */
  takeOver(space: string, rings: RingState[], gone: ReadonlySet<string>, inUse: ReadonlySet<number>): Promise<number>;
}

/** Why gone nodes' ranges are not reclaimed yet (for `weft doctor`). */
export interface BlockedReclaim {
  gone: string[];
  waitingFor: Array<{ node: string; reason: string }>;
  since: Date;
}

export class Reclaimer {
  readonly #host: ReclaimHost;
  readonly #log: Logger;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  /** The last full review (asking everyone, even with nothing visible to reclaim): which gone set, when. */
  #reviewed = { gone: '', at: 0 };
  #blocked: BlockedReclaim | undefined;

  constructor(host: ReclaimHost, logger: Logger) {
    this.#host = host;
    this.#log = logger;
  }

  start(intervalMs: number): void {
    this.#timer = setInterval(() => void this.run(), intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  get blocked(): BlockedReclaim | undefined {
    return this.#blocked && { ...this.#blocked, gone: [...this.#blocked.gone], waitingFor: [...this.#blocked.waitingFor] };
  }

  /** One attempt; concurrent calls share it. */
  run(): Promise<void> {
    this.#running ??= this.#attempt()
      .catch((error: Error) => this.#log.error({ err: error.message }, 'reclaiming gone nodes’ allocation ranges failed; retrying later'))
      .finally(() => (this.#running = undefined));
    return this.#running;
  }

  async #attempt(): Promise<void> {
    const host = this.#host;
    const { active, gone: goneList } = host.roster();
    const gone = new Set(goneList);
    if (gone.size === 0 || chooseReclaimer(active) !== host.selfId) {
      this.#blocked = undefined;
      return;
    }
    let spaces = [...new Set(host.knownRings(gone).filter((ring) => goneOwners(ring, gone).length > 0).map((ring) => ring.space))];
    const visible = spaces.length > 0;
    if (!visible) {
      this.#blocked = undefined;
      const goneKey = [...gone].sort().join(',');
      if (goneKey === this.#reviewed.gone && Date.now() - this.#reviewed.at < REVIEW_INTERVAL_MS) return;
      // Retried at the review pace, not every tick, even when a member does not answer.
      this.#reviewed = { gone: goneKey, at: Date.now() };
    }
    const members = active.filter((id) => id !== host.selfId);
    for (let round = 0; round < MAX_ROUNDS; round++) {
      const sync = new ReclaimRound(members, gone, spaces);
      const waitingFor = await this.#ask(sync);
      const outcome = sync.outcome();
      if (outcome.kind === 'incomplete') {
        // Only ranges this node can see count as waiting (doctor): a review that found nothing is just retried.
        if (visible) this.#block(goneList, waitingFor);
        return;
      }
      if (outcome.kind === 'widen') {
        spaces = outcome.spaces;
        continue;
      }
      this.#blocked = undefined;
      for (const [space, { rings, inUse }] of outcome.spaces) {
        const taken = await host.takeOver(space, rings, gone, inUse);
        if (taken > 0) this.#log.info({ space, gone: goneList, tokens: taken, kept: inUse.size }, 'reclaimed the allocation ranges of gone nodes');
      }
      return;
    }
  }

  /** Asks every member at once; returns who did not answer, and why. */
  async #ask(sync: ReclaimRound): Promise<Array<{ node: string; reason: string }>> {
    const host = this.#host;
    const waitingFor: Array<{ node: string; reason: string }> = [];
    await Promise.all(
      sync.members.map(async (member) => {
        const address = host.addressOf(member);
        if (!address) return void waitingFor.push({ node: member, reason: 'no address known' });
        try {
          const reply = await host.ringSync(address, sync.request(host.selfId, member));
          if (reply.refused !== '') return void waitingFor.push({ node: member, reason: reply.refused });
          if ('rings' in reply) sync.record(member, { rings: reply.rings, inUse: reply.inUse });
        } catch (error) {
          waitingFor.push({ node: member, reason: (error as Error).message });
        }
      }),
    );
    return waitingFor.sort((a, b) => (a.node < b.node ? -1 : 1));
  }

  #block(gone: string[], waitingFor: Array<{ node: string; reason: string }>): void {
    const since = this.#blocked?.since ?? new Date();
    if (!this.#blocked) this.#log.warn({ gone, waitingFor }, 'gone nodes’ allocation ranges wait for every active member to answer before they are reclaimed');
    this.#blocked = { gone: [...gone].sort(), waitingFor, since };
  }
}
