// This host's own entries in the endpoint tables are its word on which
// sandboxes it has on which network. The local sandbox records are the truth
// behind them: an own endpoint entry that no local attachment backs is stale
// (a delete this host made while a peer was away longer than the reap time,
// whose tombstone is gone everywhere, handed back by that peer), and one
// that a local attachment backs but in a version this host did not write is
// an older life of the same endpoint. The first is deleted anew, the second
// published again, so the owner's current word wins on every host.
import type { Entry } from '../../controlplane/tables/index.ts';
import { networkOfTable } from '../../controlplane/node/topics.ts';

export interface OwnEndpointVerdicts {
  /** Keys to delete again (table, key). */
  stale: Array<Pick<Entry, 'table' | 'key'>>;
  /** Local attachments to publish again. */
  republish: Array<{ networkId: string; endpointId: string }>;
}

/** Sorts this host's own endpoint entries by whether a local attachment backs them; other tables are left alone. */
export function settleOwnEndpoints(entries: Iterable<Pick<Entry, 'table' | 'key' | 'deleted'>>, isLocal: (networkId: string, endpointId: string) => boolean): OwnEndpointVerdicts {
  const verdicts: OwnEndpointVerdicts = { stale: [], republish: [] };
  for (const entry of entries) {
    const networkId = networkOfTable(entry.table);
    if (networkId === undefined) continue;
    if (isLocal(networkId, entry.key)) verdicts.republish.push({ networkId, endpointId: entry.key });
    else if (!entry.deleted) verdicts.stale.push({ table: entry.table, key: entry.key });
  }
  return verdicts;
}
