// Local operations that may need another node: taking a value (asking an
// owner for a share of its free space when this node has none) and freeing
// one (forwarding the free to the value's owner). Both run the same loop: a
// step of the allocator, done here, or a refusal that may pass (no ring yet,
// a handover on its way), or a request to an owner, whose reply is merged
// and the step tried again. Safety over availability: with no reachable
// owner left to ask, the operation fails with the allocator's explanation;
// it never guesses.
import type { AllocError, AllocResult, Allocator, FreeReply, FreeRequest, SpaceReply, SpaceRequest } from '../../controlplane/allocation/index.ts';
import { requireRunning, type AllocationContext } from './allocation-context.ts';
import { AllocationError } from './allocation-error.ts';
import { checkFreeReply, checkSpaceReply } from './validation.ts';

/** Refusals and failed exchanges one operation tolerates before giving up. */
const MAX_SETBACKS = 8;
/** Right after a join (no ring yet) or a handover (in-use list on its way): wait this long, not forever. */
const WAIT_FOR_STATE_MS = 10_000;

/** One round of an operation: done here, refused here, or a request for an owner. */
type Step<Request, T> = { kind: 'done'; value: T } | { kind: 'failed'; error: AllocError } | { kind: 'ask'; request: Request };

/** What differs between taking and freeing: the allocator's step, the exchange, and what a reply means. */
interface Operation<Request extends { to: string }, Reply, T> {
  /** For the give-up message: "could not …". */
  what: string;
  step(allocator: Allocator, reachable: string[]): Step<Request, T>;
  /** The checked reply of the owner at `address`. */
  ask(address: string, request: Request): Promise<Reply>;
  /** The outcome, or undefined to go round again. */
  settle(allocator: Allocator, request: Request, reply: Reply, attempts: Attempts): Promise<{ value: T } | undefined>;
}

export class OwnerRequests {
  readonly #ctx: AllocationContext;

  constructor(ctx: AllocationContext) {
    this.#ctx = ctx;
  }

  /** A value of the space: the next free one (`value` undefined) or the one asked for. */
  obtain(space: string, value: number | undefined, step: (a: Allocator, reachable: string[]) => AllocResult): Promise<number> {
    const { book, rpc } = this.#ctx;
    return this.#run(space, {
      what: `could not get ${space} space`,
      step: (allocator, reachable) => {
        const result = step(allocator, reachable);
        return result.kind === 'allocated' ? { kind: 'done', value: result.value } : result.kind === 'failed' ? result : { kind: 'ask', request: result.request };
      },
      ask: async (address, request: SpaceRequest) => checkSpaceReply(request, await rpc.space(address, request)),
      settle: async (allocator, request, reply: SpaceReply, attempts) => {
        if (book.get(space) !== allocator) throw book.unknownSpace(space);
        if (reply.kind === 'donated' && this.#ctx.cluster.addressOf(request.to) === undefined) {
          // The donor was removed meanwhile: the reclaimer may already have
          // synced with us, so a range taken from it now could be reclaimed too.
          attempts.failedPeers.add(request.to);
          attempts.setback(`${request.to} is no longer an active member`);
          return undefined;
        }
        const merged = allocator.receiveReply(reply);
        if (!merged.ok) {
          book.conflict(space, request.to, 'reply', merged.explanations);
          attempts.setback(`the reply of ${request.to} conflicts with this node's ring`);
          return undefined;
        }
        if (reply.kind === 'donated') {
          book.commit(allocator); // our ranges changed: durable before any value from them is used
          return undefined;
        }
        const { reason } = reply.refusal;
        if (reason === 'in-use' && value !== undefined) {
          throw new AllocationError('in-use', `${space} value ${value} is already in use (node ${request.to} holds it); choose another value, or leave it out to get a free one`, [request.to]);
        }
        await this.#refused(space, request.to, reason, attempts);
        return undefined;
      },
    });
  }

  /** Returns a value to its owner's free space (forwarded when another node owns it now). */
  release(space: string, value: number): Promise<void> {
    const { book, rpc } = this.#ctx;
    return this.#run(space, {
      what: `could not free ${space} value ${value}`,
      step: (allocator, reachable) => {
        const result = allocator.free(value, reachable);
        return result.kind === 'freed' ? { kind: 'done', value: undefined } : result.kind === 'failed' ? result : { kind: 'ask', request: result.request };
      },
      ask: async (address, request: FreeRequest) => checkFreeReply(request, await rpc.free(address, request)),
      settle: async (allocator, request, reply: FreeReply, attempts) => {
        if (reply.kind === 'freed') return { value: undefined };
        const merged = allocator.merge(reply.refusal.ring);
        if (!merged.ok) book.conflict(space, request.to, 'reply', merged.explanations);
        const { reason } = reply.refusal;
        if (reason === 'not-allocated') {
          throw new AllocationError('not-allocated', `${space} value ${value} is not allocated: its owner ${request.to} has no record of it, so there is nothing to free`, [request.to]);
        }
        // not-owner: the value changed hands; the merged ring names the new owner.
        await this.#refused(space, request.to, reason, attempts);
        return undefined;
      },
    });
  }

  async #run<Request extends { to: string }, Reply, T>(space: string, operation: Operation<Request, Reply, T>): Promise<T> {
    const { book, cluster, log } = this.#ctx;
    const attempts = new Attempts(operation.what);
    for (;;) {
      requireRunning(this.#ctx.phase());
      const allocator = book.require(space);
      const step = operation.step(allocator, cluster.reachable().filter((id) => !attempts.failedPeers.has(id)));
      if (step.kind === 'done') {
        book.commit(allocator);
        return step.value;
      }
      if (step.kind === 'failed') {
        await this.#waitOutTransient(space, step.error, attempts);
        continue;
      }
      attempts.checkNotExhausted();
      const { request } = step;
      let reply: Reply;
      try {
        reply = await operation.ask(this.#addressOf(request.to), request);
      } catch (error) {
        // Ask someone else this time; if nobody else owns space, the allocator says so.
        attempts.peerFailed(request.to, error as Error);
        log.warn({ space, peer: request.to, err: (error as Error).message }, `${operation.what}: a request to an owner failed`);
        continue;
      }
      const settled = await operation.settle(allocator, request, reply, attempts);
      if (settled) return settled.value;
    }
  }

  /** A local refusal: wait for a change of the space if it may pass (and time is left), else throw it. */
  async #waitOutTransient(space: string, error: AllocError, attempts: Attempts): Promise<void> {
    if (!isTransient(error.code) || Date.now() >= attempts.deadline) throw AllocationError.from(error);
    await this.#ctx.book.waiters.changeOf(space, attempts.deadline);
  }

  /** A peer refused: count it, and wait for the handover it is waiting for if time is left. */
  async #refused(space: string, peer: string, reason: string, attempts: Attempts): Promise<void> {
    attempts.setback(`${peer} refused: ${reason}`);
    if (reason === 'awaiting-handover' && Date.now() < attempts.deadline) await this.#ctx.book.waiters.changeOf(space, attempts.deadline);
  }

  #addressOf(nodeId: string): string {
    const address = this.#ctx.cluster.addressOf(nodeId);
    if (!address) throw new Error(`node ${nodeId} is not an active member`);
    return address;
  }
}

/** One local operation's budget: refusals and failed exchanges, and how long it may wait for state. */
class Attempts {
  readonly deadline = Date.now() + WAIT_FOR_STATE_MS;
  /** Peers whose exchange failed: the allocator asks someone else next. */
  readonly failedPeers = new Set<string>();
  readonly #what: string;
  #setbacks = 0;
  #last = '';

  constructor(what: string) {
    this.#what = what;
  }

  setback(reason: string): void {
    this.#setbacks++;
    this.#last = reason;
  }

  peerFailed(peer: string, error: Error): void {
    this.failedPeers.add(peer);
    this.setback(`asking ${peer} failed: ${error.message}`);
  }

  checkNotExhausted(): void {
    if (this.#setbacks < MAX_SETBACKS) return;
    throw new AllocationError('gave-up', `${this.#what} after ${this.#setbacks} refusals or failed requests (last: ${this.#last}); retry shortly`);
  }
}

function isTransient(code: string): boolean {
  return code === 'no-ring' || code === 'awaiting-handover';
}
