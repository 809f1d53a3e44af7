// Wire messages of /weft/swim/1 and the push-pull snapshot. Plain data only
// (strings, numbers, booleans, arrays, and signatures as bytes) so every type maps field for field
// onto proto/swim.proto: `kind` is the name of the field set in the
// SwimPacket oneof, everything else keeps its name (snake_case in .proto).
// The sender's node ID is not in the messages: the transport authenticates
// the peer and passes its ID to Membership.handle().

export type MemberState = 'alive' | 'suspect' | 'dead' | 'left';

/** One piggybacked membership fact, as memberlist's alive/suspect/dead messages. */
export interface MemberUpdate {
  node: string;
  address: string;
  incarnation: number;
  state: MemberState;
  /** Node that asserted it: the suspecter for suspect/dead, the node itself for alive/left. */
  from: string;
  /** `node`'s own signature of (node, incarnation) (claim-signing.ts); required to raise its incarnation. */
  signature?: Uint8Array;
}

export interface Ping {
  kind: 'ping';
  seq: number;
  /** Intended recipient; a node ignores pings for someone else (stale address). */
  target: string;
  /** Where to send the ack: the receiver may not know us yet. */
  sourceAddress: string;
  updates: MemberUpdate[];
}

export interface Ack {
  kind: 'ack';
  seq: number;
  updates: MemberUpdate[];
}

/** Ask the receiver to ping `target` for us and relay the ack (indirect probe). */
export interface PingReq {
  kind: 'pingReq';
  seq: number;
  target: string;
  targetAddress: string;
  sourceAddress: string;
  /** Lifeguard: answer with a nack if the target does not ack in time. */
  nack: boolean;
  updates: MemberUpdate[];
}

/** Lifeguard: "I tried and the target did not answer" — proves our link to the relay works. */
export interface Nack {
  kind: 'nack';
  seq: number;
  updates: MemberUpdate[];
}

/** Pure dissemination, sent only while there are updates to spread. */
export interface Gossip {
  kind: 'gossip';
  updates: MemberUpdate[];
}

export type SwimMessage = Ping | Ack | PingReq | Nack | Gossip;

export interface SnapshotEntry {
  node: string;
  address: string;
  incarnation: number;
  state: MemberState;
  signature?: Uint8Array;
}

/** Full state for push-pull anti-entropy (join, heal, periodic sync). */
export interface Snapshot {
  from: string;
  members: SnapshotEntry[];
}

const STATES: ReadonlySet<string> = new Set<MemberState>(['alive', 'suspect', 'dead', 'left']);

/**
 * The codec guarantees shapes, not values: an empty node ID, an unknown
 * state string or an incarnation outside uint32 would corrupt the view,
 * so such an update is dropped rather than trusted.
 */
export function isValidUpdate(update: MemberUpdate): boolean {
  return (
    update.node !== '' &&
    STATES.has(update.state) &&
    Number.isInteger(update.incarnation) &&
    update.incarnation >= 0 &&
    update.incarnation < 2 ** 32
  );
}
