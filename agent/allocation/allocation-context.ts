// What the parts of the allocation service share: the cluster it runs on,
// this node's spaces (space-book.ts), the /weft/alloc/1 client and the
// service's phase. The service (allocation-service.ts) builds one and hands
// it to the local operations (owner-requests.ts, handover.ts) and to the
// answers it gives peers (peer-answers.ts).
import type { Logger } from 'pino';
import type { AllocRpcClient, AllocRpcNode } from './alloc-rpc.ts';
import { AllocationError } from './allocation-error.ts';
import type { RingTables } from './ring-table.ts';
import type { SpaceBook } from './space-book.ts';

/** What the service needs from ClusterNode. */
export interface AllocationCluster {
  readonly nodeId: string;
  readonly libp2p: AllocRpcNode;
  readonly tables: RingTables;
  /** Node IDs that failure detection holds alive or suspect, self included. */
  reachable(): string[];
  /** libp2p multiaddr (with /p2p/) of an active member. */
  addressOf(nodeId: string): string | undefined;
  nodeIdOfPeer(peerId: string): string | undefined;
  /** Admitted, left and removed members: who may reclaim, and whose ranges. */
  readonly roster: { all(): ReadonlyArray<{ nodeId: string; status: 'active' | 'left' | 'revoked' }> };
}

/**
 * Values cluster objects (networks, services, endpoints of active members)
 * use in a space, from this node's tables: a reclaim keeps them reserved.
 * Undefined: the space is no longer used (its network is gone), so nothing
 * there is reclaimed.
 */
export type InUseProvider = (space: string) => Iterable<number> | undefined;

export type Phase = 'running' | 'leaving' | 'left' | 'stopped';

export interface AllocationContext {
  readonly cluster: AllocationCluster;
  readonly book: SpaceBook;
  readonly rpc: AllocRpcClient;
  readonly log: Logger;
  phase(): Phase;
  /** The values cluster objects use in a space (see InUseProvider). */
  inUse(space: string): Iterable<number> | undefined;
}

/** Throws unless the service takes new operations. */
export function requireRunning(phase: Phase): void {
  if (phase === 'running') return;
  if (phase === 'stopped') throw new AllocationError('stopped', 'the allocation service is stopped; the agent is shutting down or left the cluster');
  throw new AllocationError('left', 'this node is leaving or has left the cluster and allocates nothing; join a cluster again first');
}

/** Active members, and left or removed ones. */
export function rosterSplit(cluster: AllocationCluster): { active: string[]; gone: string[] } {
  const active: string[] = [];
  const gone: string[] = [];
  for (const member of cluster.roster.all()) (member.status === 'active' ? active : gone).push(member.nodeId);
  return { active, gone };
}
