// Public surface of the membership state machine.
export { Membership } from './membership.ts';
export type { MembershipOptions } from './membership.ts';
export { DEFAULT_MEMBERSHIP_CONFIG, resolveConfig } from './config.ts';
export type { MembershipConfig } from './config.ts';
export type { Effect, KnownMember, SelfInfo } from './effects.ts';
export type { MemberView } from './member-table.ts';
export type * from './messages.ts';
export { isValidUpdate } from './messages.ts';
export { UNSIGNED_CLAIMS, incarnationPayload } from './claim-signing.ts';
export type { ClaimSigning } from './claim-signing.ts';
export { mulberry32, deriveSeed } from './rng.ts';
export type { Rng } from './rng.ts';
export { suspicionBounds, suspicionTimeout, expectedConfirmations } from './suspicion.ts';
export { retransmitLimit } from './broadcast-queue.ts';
