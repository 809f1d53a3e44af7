// The anti-entropy exchange (/weft/sync/1), three messages:
//
//   1. A -> B  Digest            makeDigest(A, scope)
//   2. B -> A  SyncReply         diffAgainstDigest(B, digest): for every bucket
//                                whose summary differs, B's complete content
//                                of that bucket, and the list of those buckets
//   3. A -> B  entries           completeSync(A, reply): A merges B's entries,
//                                then sends, for the listed buckets, every entry
//                                it holds that B did not send in the same version
//
// Why this converges in one exchange: if A and B hold different versions a
// and b of a key, the buckets of a.owner and b.owner differ on both sides, so
// both are listed; B's complete content of them includes b, and A, which then
// knows B's content of every listed bucket, sends a whenever a wins. Keys
// that only one side holds are the same case with a or b missing.
//
// Cost: a no-difference round is the digest plus an empty reply. A differing
// bucket costs B's whole bucket plus A's delta, which is one node's entries in
// one table; with gossip delivering nearly everything, differences are rare
// and small. Tombstones and hidden entries of dead nodes are ordinary
// entries here, so they are synced like any other.

import { bucketId, localBucketDigest, makeDigest, sameBucket } from './digest.ts';
import type { BucketDigest, Digest } from './digest.ts';
import { sameVersion, toWire } from './entry.ts';
import type { WireEntry } from './entry.ts';
import type { TableFilter } from './feed.ts';
import type { BatchResult } from './results.ts';
import type { ReplicatedTables } from './table.ts';

export interface BucketRef {
  table: string;
  owner: string;
}

export interface SyncReply {
  /** The replier's complete content of every bucket in `buckets`. */
  entries: WireEntry[];
  /** Buckets whose summaries differ; the initiator answers for these. */
  buckets: BucketRef[];
}

export interface SyncCompletion {
  /** What applying the replier's entries did here. */
  result: BatchResult;
  /** Message 3: entries the replier lacks or holds in an older version. */
  entries: WireEntry[];
}

/**
 * Responder side (message 2). `accept` limits the exchange to tables this
 * node shares with the initiator (e.g. networks both are on); the reply is a
 * pure function of the digest and this node's state.
 *
 * Outside `accept`, the responder still answers for its own bucket when the
 * initiator holds one: the owner is the authority on what it wrote. That is
 * how a peer that was away longer than the reap time, and so missed a delete
 * whose tombstone is gone, hands the forgotten entry to its owner (who is no
 * longer on that table, or no longer has the key) and learns that it is
 * stale: the owner sees it among `selfConflicts` and deletes it anew.
 */
export function diffAgainstDigest(now: number, store: ReplicatedTables, digest: Digest, accept: TableFilter = () => true): SyncReply {
  const reply: SyncReply = { entries: [], buckets: [] };
  const remote = indexDigest(digest);
  for (const table of new Set(digest.tables)) {
    const theirs = remote.get(table) ?? new Map<string, BucketDigest>();
    const owners = accept(table)
      ? new Set([...theirs.keys(), ...[...store.buckets(table)].map((b) => b.owner)])
      : new Set(theirs.has(store.self) ? [store.self] : []);
    for (const owner of owners) {
      if (sameBucket(theirs.get(owner), localBucketDigest(store, table, owner))) continue;
      reply.buckets.push({ table, owner });
      for (const entry of store.bucketEntries(table, owner)) reply.entries.push(toWire(entry, now));
    }
  }
  return reply;
}

/**
 * Initiator side (message 3). `digest` is the one this node sent: entries
 * outside its tables, or outside the buckets the reply lists, are ignored,
 * so a peer cannot use a sync to push tables this node did not ask for.
 */
export function completeSync(now: number, store: ReplicatedTables, peer: string, digest: Digest, reply: SyncReply): SyncCompletion {
  const scope = new Set(digest.tables);
  const listed = new Map<string, BucketRef>();
  for (const ref of reply.buckets) if (scope.has(ref.table)) listed.set(bucketId(ref.table, ref.owner), ref);
  const theirs = reply.entries.filter((e) => listed.has(bucketId(e.table, e.owner)));
  const result = store.applySynced(now, peer, theirs);
  // Keyed by (table, key): the version the peer holds, whatever its owner.
  const sent = new Map(theirs.map((e) => [bucketId(e.table, e.key), e]));
  const entries: WireEntry[] = [];
  for (const { table, owner } of listed.values()) {
    for (const entry of store.bucketEntries(table, owner)) {
      const same = sent.get(bucketId(entry.table, entry.key));
      if (same === undefined || !sameVersion(same, entry)) entries.push(toWire(entry, now));
    }
  }
  return { result, entries };
}

export interface ExchangeResult {
  digest: Digest;
  reply: SyncReply;
  final: WireEntry[];
  initiator: BatchResult;
  responder: BatchResult;
}

/**
 * Runs the whole exchange in one process (tests, simulator, integration
 * tests with many agents). `accept` is the responder's table filter.
 */
export function exchange(now: number, initiator: ReplicatedTables, responder: ReplicatedTables, scope: Iterable<string>, accept?: TableFilter): ExchangeResult {
  const digest = makeDigest(initiator, scope);
  const reply = diffAgainstDigest(now, responder, digest, accept);
  const completion = completeSync(now, initiator, responder.self, digest, reply);
  const responderResult = responder.applySynced(now, initiator.self, completion.entries);
  return { digest, reply, final: completion.entries, initiator: completion.result, responder: responderResult };
}

function indexDigest(digest: Digest): Map<string, Map<string, BucketDigest>> {
  const byTable = new Map<string, Map<string, BucketDigest>>();
  for (const b of digest.buckets) {
    let owners = byTable.get(b.table);
    if (owners === undefined) byTable.set(b.table, (owners = new Map()));
    owners.set(b.owner, b);
  }
  return byTable;
}
