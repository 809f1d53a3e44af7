// Answers to other members' /weft/alloc/1 requests (alloc-rpc.ts has checked
// who asks and on whose behalf). Each is one synchronous allocator step,
// saved before the reply leaves: queueing them behind a local operation that
// is itself waiting on a peer would deadlock two nodes asking each other for
// space at the same moment.
import { spacesToReport, syncRefusal, type Donation, type FreeReply, type FreeRequest, type RingSyncRequest, type SpaceReply, type SpaceRequest } from '../../controlplane/allocation/index.ts';
import type { HandoverReply, RingSyncReply } from '../wire/allocation-codec.ts';
import { rosterSplit, type AllocationContext } from './allocation-context.ts';
import type { AllocRpcHandlers } from './alloc-rpc.ts';

type Answers = Pick<AllocRpcHandlers, 'onSpace' | 'onFree' | 'onHandover' | 'onRingSync'>;

export function peerAnswers(ctx: AllocationContext): Answers {
  return {
    onSpace: (from, request) => answerSpace(ctx, from, request),
    onFree: (from, request) => answerFree(ctx, from, request),
    onHandover: (from, donation) => acceptHandover(ctx, from, donation),
    onRingSync: (from, request) => answerRingSync(ctx, from, request),
  };
}

function answerSpace({ book, log }: AllocationContext, from: string, request: SpaceRequest): SpaceReply {
  const allocator = book.get(request.space) ?? book.adopt(request.space);
  const reply = allocator.handleSpaceRequest(request);
  if (reply.kind === 'donated') {
    book.commit(allocator); // the range is gone from here before the asker can use it
    log.debug({ space: request.space, to: from, value: request.value }, 'donated allocation space');
  }
  return reply;
}

function answerFree({ book, log }: AllocationContext, from: string, request: FreeRequest): FreeReply {
  const allocator = book.get(request.space) ?? book.adopt(request.space);
  const reply = allocator.handleFreeRequest(request);
  if (reply.kind === 'freed') {
    book.commit(allocator);
    book.waiters.notify(request.space);
    log.debug({ space: request.space, for: from, value: request.value }, 'freed a value on behalf of a peer');
  }
  return reply;
}

function acceptHandover(ctx: AllocationContext, from: string, donation: Donation): HandoverReply {
  const { book, log } = ctx;
  const phase = ctx.phase();
  if (phase !== 'running') return { accepted: false, reason: `node ${ctx.cluster.nodeId} is ${phase === 'stopped' ? 'stopping' : 'leaving the cluster'}` };
  const allocator = book.knownOrJoined(donation.space, donation.ring.start, donation.ring.end);
  const merged = allocator.receiveDonation(donation);
  if (!merged.ok) {
    book.conflict(donation.space, from, 'handover', merged.explanations);
    return { accepted: false, reason: merged.explanations.join('; ') };
  }
  book.set(allocator);
  book.commit(allocator);
  book.waiters.notify(donation.space);
  log.info({ space: donation.space, from, values: donation.allocated.length }, 'took over allocation ranges from a leaving member');
  return { accepted: true, reason: '' };
}

/** A reclaimer's ring sync: refused unless it is the reclaimer in our roster too and we know the nodes are gone. */
function answerRingSync(ctx: AllocationContext, from: string, request: RingSyncRequest): RingSyncReply {
  const refused = syncRefusal(request, { active: new Set(rosterSplit(ctx.cluster).active) });
  if (refused !== undefined) return { refused };
  const rings = spacesToReport(request, ctx.book.knownRings(new Set(request.gone)));
  const inUse: Array<{ space: string; values: number[] }> = [];
  for (const space of new Set(rings.map((r) => r.space))) {
    const values = ctx.inUse(space);
    if (values !== undefined) inUse.push({ space, values: [...values] });
  }
  ctx.log.debug({ from, gone: request.gone, spaces: rings.length }, 'answered a reclaimer’s ring sync');
  return { refused: '', rings, inUse };
}
