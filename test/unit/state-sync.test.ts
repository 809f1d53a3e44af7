// /weft/sync/1 and /2 between two real libp2p hosts on loopback: which round
// the periodic sync runs, what the responder is handed, the follow-up full
// round when the digests differ, and the fallback to the full round with a
// peer that speaks only /weft/sync/1 (an agent from before the digest round).
import test from 'ava';
import { lpStream } from '@libp2p/utils';
import { generateKeyPair } from '@libp2p/crypto/keys';
import { multiaddr } from '@multiformats/multiaddr';
import { createWeftLibp2p, type WeftLibp2p } from '../../agent/cluster/libp2p-node.ts';
import { newPsk } from '../../agent/cluster/psk.ts';
import { DIGEST_SYNC_PROTOCOL, SYNC_PROTOCOL, registerSync, syncWith, type SyncHandlers, type SyncMode } from '../../agent/cluster/state-sync.ts';
import { SyncScheduler } from '../../agent/cluster/sync-scheduler.ts';
import { decodeSnapshot, isDigestOnly, type Snapshot } from '../../agent/wire/cluster-codec.ts';
import { MAX_TABLE_FRAME_BYTES, decodeSyncOpen } from '../../agent/wire/tables-codec.ts';

const id = 'e'.repeat(32);
const digests = { rosterDigest: new Uint8Array(16).fill(1), membershipDigest: new Uint8Array(16).fill(2) };
const summary = [{ nodeId: id, version: 1, status: 'active' as const, changedBy: id }];

/** What one side's handlers saw; `inSync` answers the digest comparison, one value per round. */
interface Seen { openings: SyncMode[]; answered: Snapshot[]; completed: number; inSync: boolean[] }

function handlers(seen: Seen): SyncHandlers {
  return {
    opening: (mode) => {
      seen.openings.push(mode);
      return mode === 'digest' ? { members: [], ...digests } : { members: [], summary };
    },
    answerTo: (remote) => {
      seen.answered.push(remote);
      return isDigestOnly(remote) ? { members: [], ...digests } : { members: [], summary };
    },
    recordsFor: () => [],
    inSync: () => seen.inSync.shift() ?? true,
    ingest: async () => {},
    nodeIdOfPeer: () => id,
    digest: () => ({ tables: [], buckets: [] }),
    answer: () => ({ entries: [], buckets: [] }),
    complete: () => [],
    finish: () => {},
    onError: (error) => { throw error; },
    onComplete: () => void (seen.completed += 1),
  };
}

const seen = (inSync: boolean[] = []): Seen => ({ openings: [], answered: [], completed: 0, inSync });

async function host(psk: Uint8Array): Promise<WeftLibp2p> {
  const node = await createWeftLibp2p({ privateKey: await generateKeyPair('Ed25519'), psk, listenIp: '127.0.0.1', port: 0, isAdmitted: () => true, isMemberAddress: () => true });
  return node;
}

async function pair(t: import('ava').ExecutionContext): Promise<[WeftLibp2p, WeftLibp2p]> {
  const psk = newPsk();
  const [a, b] = [await host(psk), await host(psk)];
  t.teardown(() => Promise.all([a.stop(), b.stop()]));
  return [a, b];
}

async function until(check: () => boolean): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not reached within 20 s');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

test('a digest round between /weft/sync/2 peers hands the responder digests only, and ends done when they match', async (t) => {
  const [a, b] = await pair(t);
  const [sa, sb] = [seen([true]), seen()];
  await registerSync(b, handlers(sb));
  await Promise.all([a.start(), b.start()]);
  const connection = await a.dial(multiaddr(b.getMultiaddrs()[0]!.toString()));
  t.is(await syncWith(connection, handlers(sa), 'digest'), 'done');
  t.deepEqual(sa.openings, ['digest']);
  t.true(isDigestOnly(sb.answered[0]!));
  t.deepEqual(sb.answered[0]!.rosterDigest, digests.rosterDigest);
  await until(() => sb.completed === 1);
});

test('the periodic round follows a digest round that differs with a full round at once', async (t) => {
  const [a, b] = await pair(t);
  const [sa, sb] = [seen([false]), seen()];
  await registerSync(b, handlers(sb));
  await Promise.all([a.start(), b.start()]);
  await a.dial(multiaddr(b.getMultiaddrs()[0]!.toString()));
  const scheduler = new SyncScheduler(a, handlers(sa));
  t.teardown(() => scheduler.stop());
  scheduler.withRandomPeer();
  await until(() => sb.completed === 2);
  t.deepEqual(sa.openings, ['digest', 'full']);
  t.true(isDigestOnly(sb.answered[0]!));
  t.deepEqual(sb.answered[1]!.summary, summary);
});

test('a peer that speaks only /weft/sync/1 gets the full opening it knows, even for a periodic round', async (t) => {
  const [a, b] = await pair(t);
  const sa = seen();
  const received: { protocol: string; opening: Snapshot }[] = [];
  // The old agent's responder: one protocol; it reads the opening and hangs up.
  await b.handle(SYNC_PROTOCOL, async (stream) => {
    const lp = lpStream(stream, { maxDataLength: MAX_TABLE_FRAME_BYTES });
    received.push({ protocol: stream.protocol, opening: decodeSnapshot(decodeSyncOpen((await lp.read()).subarray()).snapshot) });
    stream.abort(new Error('test responder stops here'));
  });
  await Promise.all([a.start(), b.start()]);
  const connection = await a.dial(multiaddr(b.getMultiaddrs()[0]!.toString()));
  const failing = { ...handlers(sa), onError: () => {} };
  t.is(await syncWith(connection, failing, 'digest'), 'failed');
  t.deepEqual(sa.openings, ['full']);
  t.is(received[0]!.protocol, SYNC_PROTOCOL);
  t.false(isDigestOnly(received[0]!.opening));
  t.deepEqual(received[0]!.opening.summary, summary);
  t.not(SYNC_PROTOCOL, DIGEST_SYNC_PROTOCOL);
});
