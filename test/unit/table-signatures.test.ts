// A member must not be able to forge other members' table entries, on any
// path (gossip, sync relay, reload): every version carries its owner's
// ed25519 signature (the libp2p node key) and is verified before it is kept.
import test from 'ava';
import pino from 'pino';
import { generateKeyPair } from '@libp2p/crypto/keys';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import { ReplicatedTables, exchange, signedFields } from '../../controlplane/tables/index.ts';
import type { WireEntry } from '../../controlplane/tables/index.ts';
import { OwnerKeys } from '../../agent/cluster/owner-keys.ts';
import { NodeRunner, type TableStore } from '../../agent/cluster/node-runner.ts';
import { decodeEntryBatch, encodeEntryBatch } from '../../agent/wire/tables-codec.ts';
import type { WeftLibp2p } from '../../agent/cluster/libp2p-node.ts';

const A = 'a'.repeat(32);
const B = 'b'.repeat(32);
const R = 'c'.repeat(32); // the rogue member
const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);

interface Member {
  id: string;
  keys: OwnerKeys;
  tables: ReplicatedTables;
  verify: (owner: string, payload: Uint8Array, signature: Uint8Array) => boolean;
}

async function cluster(ids: string[]): Promise<Map<string, Member>> {
  const peers = new Map<string, string>();
  const keys = new Map<string, OwnerKeys>();
  for (const id of ids) {
    const key = await generateKeyPair('Ed25519');
    peers.set(id, peerIdFromPrivateKey(key).toString());
    keys.set(id, new OwnerKeys(key));
  }
  const members = new Map<string, Member>();
  for (const id of ids) {
    const own = keys.get(id)!;
    const verify = (owner: string, payload: Uint8Array, signature: Uint8Array): boolean => {
      const peer = peers.get(owner);
      return peer !== undefined && own.verifyByPeer(peer, payload, signature);
    };
    members.set(id, { id, keys: own, verify, tables: new ReplicatedTables({ self: id, sign: (payload) => own.sign(payload), verify }) });
  }
  return members;
}

test('a sync peer cannot relay a version of another owner\'s entry that the owner did not sign', async (t) => {
  const m = await cluster([A, B, R]);
  const a = m.get(A)!, b = m.get(B)!, r = m.get(R)!;
  const genuine = a.tables.set(1, 'endpoints/n1', 'ep1', bytes('vtep 198.18.0.1')).entry;
  b.tables.applyRemote(1, A, genuine);
  // The rogue rewrites A's endpoint: a newer version, owner A, signed by the rogue, unsigned, or with A's old signature.
  const forged: WireEntry = { ...genuine, lamport: genuine.lamport + 5, value: bytes('vtep 203.0.113.66') };
  const signedByRogue: WireEntry = { ...forged, signature: r.keys.sign(signedFields(forged)) };
  const unsigned: WireEntry = { ...forged, key: 'ep2', signature: new Uint8Array() };
  const replayed: WireEntry = { ...forged, signature: genuine.signature! };
  const result = b.tables.applySynced(2, R, [signedByRogue, unsigned, replayed]);
  t.is(result.applied, 0);
  t.is(result.refused, 3);
  t.deepEqual(b.tables.get('endpoints/n1', 'ep1')?.value, bytes('vtep 198.18.0.1'));
  t.is(b.tables.get('endpoints/n1', 'ep2'), undefined);
  t.is(b.tables.counters.badSignatures, 3);
});

test('over gossip (the publisher is the owner, its message signed by the same key) an entry must still be signed', async (t) => {
  const m = await cluster([A, B]);
  const a = m.get(A)!, b = m.get(B)!;
  const entry = a.tables.set(1, 'services', 'web', bytes('vip 100.64.0.10')).entry;
  t.is(b.tables.applyRemote(1, A, { ...entry, signature: new Uint8Array() }).status, 'badSignature');
  t.is(b.tables.applyRemote(1, A, entry).status, 'applied');
  // Altered in transit, it would fail gossipsub's check; relayed by sync, it fails ours.
  t.is(b.tables.applySynced(1, A, [{ ...entry, lamport: entry.lamport + 1, value: bytes('vip 100.64.0.99') }]).refused, 1);
  t.is(b.tables.counters.badSignatures, 2);
  // The same version with another signature is refused (it could otherwise shorten a tombstone's reap time).
  t.is(b.tables.applyRemote(1, A, { ...entry, signature: new Uint8Array(64) }).status, 'badSignature');
});

test('signed entries relayed by anyone are accepted, and one sync exchange still converges', async (t) => {
  const m = await cluster([A, B, R]);
  const a = m.get(A)!, b = m.get(B)!, r = m.get(R)!;
  for (let i = 0; i < 20; i++) a.tables.set(1, 'networks', `net${i}`, bytes(`n${i}`));
  a.tables.delete(2, 'networks', 'net3');
  exchange(3, r.tables, a.tables, ['networks']);
  const result = exchange(4, b.tables, r.tables, ['networks']);
  t.is(result.initiator.refused + result.responder.refused, 0);
  t.is(b.tables.list('networks').length, 19);
  t.is(b.tables.counters.relayed, 20); // 19 live entries and a tombstone
});

test('signatures survive the wire codec', async (t) => {
  const m = await cluster([A, B]);
  const entry = m.get(A)!.tables.set(1, 'networks', 'ok', bytes('fine')).entry;
  const decoded = decodeEntryBatch(encodeEntryBatch([entry])).entries[0]!;
  t.deepEqual(decoded.signature, entry.signature);
  t.is(m.get(B)!.tables.applyRemote(1, A, decoded).status, 'applied');
});

function fakeNode(): WeftLibp2p {
  const pubsub = { addEventListener: () => undefined, topicValidators: new Map(), subscribe: () => undefined, unsubscribe: () => undefined, publish: async () => undefined };
  return { services: { pubsub } } as unknown as WeftLibp2p;
}

test('reload: our own unsigned entries (an older agent\'s file) are signed, anyone else\'s are left out', async (t) => {
  const m = await cluster([A, B]);
  const a = m.get(A)!;
  const unsigned = (owner: string, key: string): WireEntry => ({ table: 'networks', key, owner, lamport: 3, deleted: false, reapInMs: 0, value: bytes(key) });
  const signedByB = m.get(B)!.tables.set(1, 'networks', 'b-signed', bytes('x')).entry;
  const store: TableStore = { load: () => ({ lamport: 5, entries: [unsigned(A, 'mine'), unsigned(B, 'theirs'), signedByB] }), save: () => undefined };
  const sign = (payload: Uint8Array): Uint8Array => a.keys.sign(payload);
  const runner = new NodeRunner({
    node: fakeNode(), selfId: A, selfAddress: 'sim://a', logger: pino({ level: 'silent' }), store, nodeIdOfPeer: () => undefined, isAdmittedOwner: () => true,
    sign, verify: a.verify, claims: { sign, verify: a.verify },
  });
  t.teardown(() => runner.stop());
  const tables = runner.core.tables;
  t.deepEqual(tables.list('networks').map((e) => e.key).sort(), ['b-signed', 'mine']);
  const mine = tables.lookup('networks', 'mine')!;
  t.true(a.verify(A, signedFields(mine), mine.signature!));
});
