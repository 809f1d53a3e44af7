// One member's bad entry must not stop a batch: the codec drops and counts it,
// and every other entry of the same gossip batch or sync message goes through.
import test from 'ava';
import type { WireEntry } from '../../controlplane/tables/index.ts';
import { decodeEntryBatch, decodeSyncFinish, decodeSyncReply } from '../../agent/wire/tables-codec.ts';
import { encodePlain, tablesTypes } from '../../agent/wire/protos.ts';

const A = 'a'.repeat(32);
const good: WireEntry = { table: 'networks', key: 'ok', owner: A, lamport: 5, deleted: false, reapInMs: 0, value: new TextEncoder().encode('fine') };
// 2^53 does not fit the codec's safe-integer Lamport times; protobufjs still encodes it.
const bad = [{ ...good, key: 'huge', lamport: 2 ** 53 + 2 }, { ...good, key: 'who', owner: 'not-a-node-id' }, { ...good, key: 'x'.repeat(600) }];

test('a gossip batch keeps its good entries when some are bad', (t) => {
  const decoded = decodeEntryBatch(encodePlain(tablesTypes.EntryBatch, { entries: [bad[0], good, ...bad.slice(1)] }));
  t.is(decoded.dropped, 3);
  t.deepEqual(decoded.entries.map((e) => e.key), ['ok']);
});

test('so do the sync reply and the sync finish', (t) => {
  const reply = decodeSyncReply(encodePlain(tablesTypes.SyncReply, { entries: [...bad, good], buckets: [{ table: 'networks', owner: A }] }));
  t.is(reply.dropped, 3);
  t.deepEqual(reply.entries.map((e) => e.key), ['ok']);
  t.deepEqual(reply.buckets, [{ table: 'networks', owner: A }]);
  const finish = decodeSyncFinish(encodePlain(tablesTypes.SyncFinish, { entries: [good, ...bad] }));
  t.is(finish.dropped, 3);
  t.deepEqual(finish.entries.map((e) => e.key), ['ok']);
});

test('a frame that is not protobuf at all is still refused whole', (t) => {
  t.throws(() => decodeEntryBatch(Uint8Array.of(0xff, 0xff, 0xff)), { name: 'FrameError' });
});
