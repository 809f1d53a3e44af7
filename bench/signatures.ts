// Cost of owner signatures (docs/security/signed-records.md): signing one
// table entry when it is written, verifying it when a relayed version
// arrives (sync, reload), and applying a 2,000-entry batch of another
// owner's entries: over sync (verified), over gossip (the transport checked
// the publisher's signature), and with no signatures at all.
// Usage: node bench/signatures.ts
// Prints a table and writes bench/results/signatures.json.
import { mkdirSync, writeFileSync } from 'node:fs';
import { generateKeyPair } from '@libp2p/crypto/keys';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import { OwnerKeys } from '../agent/cluster/owner-keys.ts';
import { ReplicatedTables, signedFields, type WireEntry } from '../controlplane/tables/index.ts';
import { Membership, mulberry32, incarnationPayload, UNSIGNED_CLAIMS, type ClaimSigning, type MemberUpdate } from '../controlplane/membership/index.ts';

const N = 5_000;
const BATCH = 2_000;
const OWNER = 'a'.repeat(32);
const key = await generateKeyPair('Ed25519');
const peer = peerIdFromPrivateKey(key).toString();
const keys = new OwnerKeys(key);
const value = new Uint8Array(200); // about an encoded endpoint

const perOp = (run: () => void, n: number): number => {
  const started = performance.now();
  run();
  return ((performance.now() - started) * 1000) / n;
};

let signature: Uint8Array = new Uint8Array();
const signUs = perOp(() => {
  for (let i = 0; i < N; i++) signature = keys.sign(signedFields({ table: 'endpoints/n', key: `k${i}`, owner: OWNER, lamport: i, deleted: false, value }));
}, N);
const payload = signedFields({ table: 'endpoints/n', key: `k${N - 1}`, owner: OWNER, lamport: N - 1, deleted: false, value });
const verifyUs = perOp(() => {
  for (let i = 0; i < N; i++) if (!keys.verifyByPeer(peer, payload, signature)) throw new Error('verification failed');
}, N);

const writer = new ReplicatedTables({ self: OWNER, sign: (p) => keys.sign(p) });
const batch: WireEntry[] = Array.from({ length: BATCH }, (_, i) => writer.set(0, 'endpoints/n', `k${i}`, value).entry);
const receiver = (verify: boolean): ReplicatedTables =>
  new ReplicatedTables({ self: 'b'.repeat(32), ...(verify ? { verify: (_o: string, p: Uint8Array, s: Uint8Array) => keys.verifyByPeer(peer, p, s) } : {}) });
const plainMs = perOp(() => receiver(false).applySynced(0, 'c'.repeat(32), batch), 1) / 1000;
const verifiedMs = perOp(() => receiver(true).applySynced(0, 'c'.repeat(32), batch), 1) / 1000;
const gossipMs = perOp(() => receiver(true).applyRemoteBatch(0, OWNER, batch), 1) / 1000;

// SWIM claims: a refutation is signed once; a receiver verifies each new
// (member, incarnation) once and recognises every further copy by its bytes.
const B = 'b'.repeat(32);
const claims: ClaimSigning = { sign: (p) => keys.sign(p), verify: (_node, p, s) => keys.verifyByPeer(peer, p, s) };
const refutations: MemberUpdate[] = Array.from({ length: N }, (_, i) => ({
  node: B, address: 'addr-b', incarnation: i + 1, state: 'alive', from: B, signature: keys.sign(incarnationPayload(B, i + 1, 'addr-b')),
}));
const swimReceiver = (c: ClaimSigning): Membership => {
  const m = new Membership({ self: { id: 'c'.repeat(32), address: 'addr-c' }, rng: mulberry32(1), now: 0, claims: c });
  m.addMember(0, { id: B, address: 'addr-b', incarnation: 0 });
  return m;
};
const freshReceiver = swimReceiver(claims);
const freshClaimUs = perOp(() => {
  for (const update of refutations) freshReceiver.handle(1, B, { kind: 'gossip', updates: [update] });
}, N);
const copies = swimReceiver(claims);
const copyUs = perOp(() => {
  for (let i = 0; i < N; i++) copies.handle(1, B, { kind: 'gossip', updates: [refutations[0]!] });
}, N);
const unsigned = swimReceiver(UNSIGNED_CLAIMS);
const unsignedUs = perOp(() => {
  for (const update of refutations) unsigned.handle(1, B, { kind: 'gossip', updates: [update] });
}, N);
if (copies.claimVerifications !== 1 || freshReceiver.claimVerifications !== N) throw new Error('claim verdicts were not cached as expected');

const rows: [string, string][] = [
  ['sign one entry (µs)', signUs.toFixed(1)],
  ['verify one entry (µs)', verifyUs.toFixed(1)],
  [`apply ${BATCH} entries, no signatures (ms)`, plainMs.toFixed(1)],
  [`apply ${BATCH} entries over gossip (ms)`, gossipMs.toFixed(1)],
  [`apply ${BATCH} relayed entries over sync (ms)`, verifiedMs.toFixed(1)],
  ['SWIM: new signed incarnation, per claim (µs)', freshClaimUs.toFixed(1)],
  ['SWIM: copy of a verified claim, per claim (µs)', copyUs.toFixed(1)],
  ['SWIM: new incarnation, unsigned (µs)', unsignedUs.toFixed(1)],
];
console.log('owner signatures (ed25519, node:crypto)');
for (const [what, figure] of rows) console.log(`${what.padEnd(46)} ${figure.padStart(8)}`);
mkdirSync('bench/results', { recursive: true });
writeFileSync('bench/results/signatures.json', JSON.stringify({ signUs, verifyUs, batch: BATCH, plainMs, gossipMs, verifiedMs, swimFreshClaimUs: freshClaimUs, swimCopyUs: copyUs, swimUnsignedUs: unsignedUs, date: new Date().toISOString() }, null, 2) + '\n');
