// The cluster half of a sync round (state-sync.ts): what this node sends of
// its roster and liveness view. A full round sends the roster summarised and
// the liveness snapshot, then the member records the peer lacks; a digest
// round (controlplane/cluster/sync-digest.ts) sends two hashes instead.
import { recordsNewerThan, summaryOf, type Roster } from '../../controlplane/cluster/roster.ts';
import { sameDigests, syncDigests } from '../../controlplane/cluster/sync-digest.ts';
import type { MemberView } from '../../controlplane/membership/index.ts';
import { isDigestOnly, type Snapshot } from '../wire/cluster-codec.ts';
import type { SyncHandlers } from './state-sync.ts';

export interface RosterSyncSource {
  roster: Roster;
  /** Full state, liveness snapshot included (a full round). */
  snapshot(): Snapshot;
  /** Token and settings without liveness (a digest round sends only hashes of the rest). */
  durable(): Snapshot;
  /** The failure-detection view the liveness hash covers. */
  liveness(): readonly MemberView[];
  /** A digest round found the peer unlike us (counted; the scheduler runs a full round). */
  onDiffer(): void;
}

export function rosterSyncHandlers(source: RosterSyncSource): Pick<SyncHandlers, 'opening' | 'answerTo' | 'recordsFor' | 'inSync'> {
  const digests = () => syncDigests(source.roster.all(), source.liveness());
  const digestSnapshot = (): Snapshot => ({ ...source.durable(), members: [], ...digests() });
  const summary = () => source.roster.all().map(summaryOf);
  const recordsFor = (remote: Snapshot) => (isDigestOnly(remote) ? [] : recordsNewerThan(source.roster.all(), remote.summary ?? []));
  return {
    opening: (mode) => (mode === 'digest' ? digestSnapshot() : { ...source.snapshot(), members: [], summary: summary() }),
    answerTo: (remote) => (isDigestOnly(remote) ? digestSnapshot() : { ...source.snapshot(), members: recordsFor(remote), summary: summary() }),
    recordsFor,
    inSync: (remote) => {
      const same = sameDigests(digests(), remote);
      if (!same) source.onDiffer();
      return same;
    },
  };
}
