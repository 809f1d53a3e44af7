// What the allocation service checks before it trusts an input: a space
// definition handed in by the overlay (its bounds become ring tokens every
// member stores), and a peer's reply to a space or free request (a reply
// must answer the request that was sent, or a confused or hostile peer could
// graft another space's ranges onto this node's ring).
import type { FreeReply, FreeRequest, SpaceReply, SpaceRequest } from '../../controlplane/allocation/index.ts';
import { AllocationError } from './allocation-error.ts';

/** A named integer space [start, end) for the ring allocator. */
export interface SpaceDefinition {
  name: string;
  start: number;
  end: number;
}

const MAX_SPACE_NAME = 64;
const MAX_SPACE_END = 2 ** 32;

export function checkDefinition(space: SpaceDefinition): void {
  // "|" separates the space from the node ID in an allocations table key (ring-keys.ts).
  if (space.name === '' || space.name.length > MAX_SPACE_NAME || space.name.includes('|')) {
    throw new AllocationError('out-of-space', `allocation space name ${JSON.stringify(space.name)} must be 1-${MAX_SPACE_NAME} characters without "|"`);
  }
  if (!Number.isSafeInteger(space.start) || !Number.isSafeInteger(space.end) || space.start < 0 || space.end <= space.start || space.end > MAX_SPACE_END) {
    throw new AllocationError('out-of-space', `allocation space ${space.name} must be integers 0 <= start < end <= 2^32, got [${space.start}, ${space.end})`);
  }
}

/** A reply must come from the node asked, about the space asked, for this node. */
export function checkSpaceReply(request: SpaceRequest, reply: SpaceReply): SpaceReply {
  const m = reply.kind === 'donated' ? reply.donation : reply.refusal;
  if (m.space !== request.space || m.from !== request.to || m.to !== request.from) {
    throw new Error(`reply about ${m.space} from ${m.from} to ${m.to} does not answer a ${request.space} request from ${request.from} to ${request.to}`);
  }
  return reply;
}

export function checkFreeReply(request: FreeRequest, reply: FreeReply): FreeReply {
  if (reply.kind === 'freed') {
    if (reply.value !== request.value) throw new Error(`free reply names value ${reply.value}, not ${request.value}`);
    return reply;
  }
  const m = reply.refusal;
  if (m.space !== request.space || m.from !== request.to || m.to !== request.from) {
    throw new Error(`free refusal about ${m.space} from ${m.from} does not answer a ${request.space} request to ${request.to}`);
  }
  return reply;
}
