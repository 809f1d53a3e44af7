// Everything a simulated weft node sends, one union so that a single
// simulator carries all three protocols, as one libp2p connection does:
// SWIM packets (/weft/swim/1), gossipsub RPCs (the table topics) and the
// three parts of /weft/sync/1. The sync parts carry what the agent's do
// (agent/cluster/state-sync.ts): the table digest, reply and finish, and
// either the membership snapshot for push-pull (a full round) or only the
// hash of the liveness view (a digest round, the periodic one). The agent's
// sync also carries the roster (a summary, records only where they differ),
// and so does the simulator's (sim-roster.ts); bench/convergence.ts accounts
// for the roster's size separately. Member records the node writes travel on
// the cluster topic (weft/cluster/1), as the agent's do. `exchange` stands
// for the stream: it is not a field on the wire.

import type { MemberRecord, MemberSummary } from '../cluster/roster.ts';
import type { Snapshot, SwimMessage } from '../membership/messages.ts';
import type { SyncReply } from '../tables/antientropy.ts';
import type { Digest } from '../tables/digest.ts';
import type { WireEntry } from '../tables/entry.ts';
import type { GossipRpc } from './dissemination-gossipsub.ts';

/** A table topic's message data: one coalesced weft.tables.EntryBatch. */
export type EntryBatchData = readonly WireEntry[];

/** The cluster topic's message data: member records (a weft.cluster.Envelope without the token). */
export interface RecordBatchData {
  readonly members: readonly MemberRecord[];
}

/** A gossipsub message's data, by topic. */
export type GossipData = EntryBatchData | RecordBatchData;

export function isRecordBatch(data: GossipData): data is RecordBatchData {
  return !Array.isArray(data);
}

export type TablesWire =
  | { kind: 'swim'; message: SwimMessage }
  | { kind: 'gossipsub'; rpc: GossipRpc<GossipData> }
  | ({ kind: 'sync-open'; exchange: string; digest: Digest } & SyncMembership)
  | ({ kind: 'sync-answer'; exchange: string; reply: SyncReply; members: MemberRecord[] } & SyncMembership)
  | { kind: 'sync-finish'; exchange: string; entries: WireEntry[]; members: MemberRecord[] };

/**
 * What a sync message says of the roster and membership: the roster summary
 * and the liveness snapshot (full round), or the hashes of both (digest round).
 */
export type SyncMembership =
  | { snapshot: Snapshot; summary: MemberSummary[]; membershipDigest?: undefined; rosterDigest?: undefined }
  | { snapshot?: undefined; summary?: undefined; membershipDigest: Uint8Array; rosterDigest: Uint8Array };

/** Size of one message as the host estimates it (the simulator itself does no encoding). */
export interface MessageSize {
  /** Protobuf bytes of the message itself. */
  payload: number;
  /** Payload plus modelled transport framing (muxer, encryption, TCP/IP). */
  wire: number;
}

export type Sizer = (message: TablesWire) => MessageSize;

/** Traffic class of a message, for per-protocol accounting. */
export function trafficClass(message: TablesWire): string {
  switch (message.kind) {
    case 'swim':
      return `swim/${message.message.kind}`;
    case 'gossipsub': {
      const { rpc } = message;
      if (rpc.messages.length > 0) return 'gossipsub/message';
      if (rpc.ihave.length > 0) return 'gossipsub/ihave';
      if (rpc.iwant.length > 0) return 'gossipsub/iwant';
      return 'gossipsub/graft-prune';
    }
    case 'sync-open':
    case 'sync-answer':
      return `sync/${message.kind.slice('sync-'.length)}${message.snapshot === undefined ? '-digest' : ''}`;
    default:
      return `sync/${message.kind.slice('sync-'.length)}`;
  }
}

export interface TrafficTotals {
  messages: number;
  payload: number;
  wire: number;
}

/** Messages and bytes sent, per traffic class. */
export class TrafficCounter {
  readonly byClass = new Map<string, TrafficTotals>();

  add(message: TablesWire, size: MessageSize | undefined): void {
    const cls = trafficClass(message);
    let totals = this.byClass.get(cls);
    if (totals === undefined) this.byClass.set(cls, (totals = { messages: 0, payload: 0, wire: 0 }));
    totals.messages += 1;
    if (size !== undefined) {
      totals.payload += size.payload;
      totals.wire += size.wire;
    }
  }
}
