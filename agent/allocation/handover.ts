// A graceful leave hands every range this node owns, with the values still
// in use, to a reachable member over /weft/alloc/1. The ranges leave this
// node's ring only once the member is connected, and once sent they never
// come back unless the member refused them: two owners could hand out the
// same values.
import { Allocator, type Donation } from '../../controlplane/allocation/index.ts';
import type { HandoverReply } from '../wire/allocation-codec.ts';
import type { AllocationContext } from './allocation-context.ts';

export interface LeaveReport {
  /** Spaces whose ranges went to another member; `confirmed` false when the reply was lost. */
  handedOver: Array<{ space: string; to: string; confirmed: boolean }>;
  /** Spaces whose ranges stay owned by this node (no member would take them). */
  kept: string[];
}

/** Hands the space's ranges to the first member (by node ID) that takes them; records the outcome in `report`. */
export async function handOver(ctx: AllocationContext, space: string, report: LeaveReport): Promise<void> {
  const { book, cluster, rpc, log } = ctx;
  const self = cluster.nodeId;
  const initial = book.get(space);
  if (!initial || initial.ownedRanges().length === 0) return;
  for (const to of cluster.reachable().filter((id) => id !== self).sort()) {
    const address = cluster.addressOf(to);
    const allocator = book.get(space);
    if (!address || !allocator) continue;
    const before = { ring: allocator.ring, allocated: allocator.allocated() };
    const sent: { donation?: Donation | undefined } = {};
    let reply: HandoverReply | undefined;
    try {
      // The ranges leave this node's ring only once `to` is connected.
      reply = await rpc.handover(address, () => (sent.donation = allocator.leave(to)));
    } catch (error) {
      // Not connected (or nothing built): nothing left this node; try the next member.
      if (sent.donation === undefined) continue;
      // The donation may have arrived. Never take the ranges back: two
      // owners could hand out the same values. At worst `to` holds them
      // unusable (awaiting handover) until this node is reclaimed.
      book.commit(allocator);
      log.error({ space, to, err: (error as Error).message }, 'the handover reply was lost; the ranges count as handed over');
      report.handedOver.push({ space, to, confirmed: false });
      return;
    }
    const { donation } = sent;
    if (donation === undefined) return; // owned nothing after all
    if (reply?.accepted) {
      book.commit(allocator);
      report.handedOver.push({ space, to, confirmed: true });
      log.info({ space, to, values: donation.allocated.length }, 'handed allocation ranges over');
      return;
    }
    // Refused: `to` did not take them; they are still ours.
    log.warn({ space, to, reason: reply?.reason }, 'a member refused the handover; trying another');
    const restored = Allocator.restore(self, before.ring, before.allocated);
    book.mergeFromTable(restored);
    book.set(restored);
  }
  report.kept.push(space);
}
