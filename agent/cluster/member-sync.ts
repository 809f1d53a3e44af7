// What a cluster member answers and applies in anti-entropy rounds
// (state-sync.ts): its roster records and liveness view (roster-sync.ts) and
// its tables (table-service.ts), with each round's outcome counted for the
// metrics and for readiness.
import type { Logger } from 'pino';
import type { Roster } from '../../controlplane/cluster/roster.ts';
import type { Snapshot } from '../wire/cluster-codec.ts';
import type { NodeRunner } from './node-runner.ts';
import { rosterSyncHandlers } from './roster-sync.ts';
import type { SyncHandlers } from './state-sync.ts';
import type { TableService } from './table-service.ts';

/** Anti-entropy rounds since start, by outcome (metrics; readiness needs one completed). */
export interface SyncRounds { ok: number; failed: number; differed: number }

export interface MemberSyncOptions {
  roster: Roster;
  runner: NodeRunner;
  tables: TableService;
  /** Everything this member states: records, token, settings, liveness. */
  snapshot: () => Snapshot;
  /** What it persists: no liveness. */
  durable: () => Snapshot;
  ingest: (remote: Snapshot, fromPeer: string) => Promise<void>;
  activeNodeIdOf: (peerId: string) => string | undefined;
  rounds: SyncRounds;
  logger: Logger;
}

export function memberSyncHandlers(o: MemberSyncOptions): SyncHandlers {
  return {
    ...rosterSyncHandlers({
      roster: o.roster,
      snapshot: o.snapshot,
      durable: o.durable,
      liveness: () => o.runner.membership.members(),
      onDiffer: () => void (o.rounds.differed += 1),
    }),
    ingest: o.ingest,
    nodeIdOfPeer: o.activeNodeIdOf,
    digest: () => o.tables.digest(),
    answer: (digest) => o.tables.answer(digest),
    complete: (peer, digest, reply) => o.tables.complete(peer, digest, reply),
    finish: (peer, entries, dropped) => o.tables.finish(peer, entries, dropped),
    onError: (error, peer) => {
      o.rounds.failed += 1;
      o.logger.debug({ peer, err: error.message }, 'state sync failed');
    },
    onComplete: () => void (o.rounds.ok += 1),
  };
}
