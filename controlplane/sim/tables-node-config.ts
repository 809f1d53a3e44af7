// What a simulated weft node is configured with and what it reports: the
// agent's timings plus the modelled CPU costs (HostTiming), the options a
// TablesSimNode (tables-node.ts) is built with, and its sync counters.

import type { MemberRecord } from '../cluster/roster.ts';
import type { MembershipConfig } from '../membership/config.ts';
import type { MemberView } from '../membership/member-table.ts';
import type { MemberState } from '../membership/messages.ts';
import type { WireEntry } from '../tables/entry.ts';
import { DEFAULT_NODE_TIMING } from '../node/node-core.ts';
import type { GossipsubParams } from './dissemination-gossipsub.ts';
import type { Sizer } from './tables-messages.ts';

/** The agent's timings, plus the modelled CPU costs of a gossipsub hop. */
export interface HostTiming {
  /** NodeTiming.coalesceMs (node-core.ts), the agent's value by default. */
  coalesceMs: number;
  /** NodeTiming.maxEntriesPerMessage. */
  maxEntriesPerMessage: number;
  /** Signing a message before it leaves (TOOLCHAIN.md: ~0.5 ms). */
  signMs: number;
  /** Receiving a first copy until it is applied and forwarded (decode, signature check, validator). */
  validateMs: number;
  /** cluster-node.ts PERIODIC_SYNC_MS; Infinity disables. */
  periodicSyncMs: number;
  /** Sync on every outbound connection (cluster-node.ts 'connection:open'). */
  syncOnConnect: boolean;
  /** state-sync.ts SYNC_TIMEOUT_MS: an exchange whose answer does not come is dropped. */
  syncTimeoutMs: number;
}

export const DEFAULT_HOST_TIMING: Readonly<HostTiming> = Object.freeze({
  coalesceMs: DEFAULT_NODE_TIMING.coalesceMs,
  maxEntriesPerMessage: DEFAULT_NODE_TIMING.maxEntriesPerMessage,
  signMs: 0.5,
  validateMs: 1,
  periodicSyncMs: 30_000,
  syncOnConnect: true,
  syncTimeoutMs: 15_000,
});

export interface PersistedTables {
  lamport: number;
  entries: WireEntry[];
}

export interface TablesNodeOptions {
  id: string;
  address: string;
  now: number;
  /** This life's seed: membership, router and host draw from streams derived from it. */
  seed: number;
  /** Overlay networks this node has endpoints on (it subscribes to their topics). */
  networks: readonly string[];
  membership?: Partial<MembershipConfig>;
  gossipsub: GossipsubParams;
  timing: HostTiming;
  /** The roster at start (sim-roster.ts settledRecord for every node). */
  records: readonly MemberRecord[];
  /** Tables saved before a restart (the agent's TableStore). */
  restored?: PersistedTables;
  sizer?: Sizer;
  onMemberChanged?: (now: number, observer: string, member: MemberView, previous: MemberState | null) => void;
  /** The core asked to drop every connection to `peer` (it was declared dead). */
  onDropConnections?: (peer: string) => void;
  /** `peer` is no longer an active member (left or revoked): hang up, never dial it again. */
  onMemberInactive?: (peer: string) => void;
  /** This node's own record came back revoked: it leaves the cluster. */
  onRevoked?: () => void;
}

export interface SyncCounters {
  started: number;
  answered: number;
  completed: number;
  finished: number;
  timedOut: number;
}

/** full: on connect, on a member's return, after a digest round differed. digest: periodic. */
export type SyncMode = 'full' | 'digest';
