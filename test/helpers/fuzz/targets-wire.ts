// Fuzz targets for the frames members exchange (agent/wire/*): SWIM packets
// and snapshots, cluster gossip envelopes, the three /weft/sync/1 messages
// with what they carry, table batches and the objects in their values, the
// allocation RPC, and the local files written in the same codecs. Each
// target decodes as the receiving handler does (a sync message is decoded
// part by part, in the handler's order). Seeds are real messages encoded with
// the project's encoders; the clean refusal is FrameError throughout.
import fc from 'fast-check';
import { FrameError } from '../../../agent/wire/checked-decode.ts';
import { decodeSwim, decodeSwimSnapshot, encodeSwim, encodeSwimSnapshot } from '../../../agent/wire/swim-codec.ts';
import { decodeEnvelope, decodeSnapshot, decodeSyncClose, encodeEnvelope, encodeSnapshot, encodeSyncClose } from '../../../agent/wire/cluster-codec.ts';
import {
  decodeDigest, decodeEntryBatch, decodeSyncAnswer, decodeSyncFinish, decodeSyncOpen, decodeSyncReply,
  encodeDigest, encodeEntryBatch, encodeSyncAnswer, encodeSyncFinish, encodeSyncOpen, encodeSyncReply,
} from '../../../agent/wire/tables-codec.ts';
import { decodeEndpoint, decodeNetwork, decodeService, encodeEndpoint, encodeNetwork, encodeService } from '../../../agent/wire/objects-codec.ts';
import {
  decodeAllocCall, decodeFreeReply, decodeHandoverReply, decodeRing, decodeSpaceReply, decodeSpaceState,
  encodeAllocCall, encodeFreeReply, encodeHandoverReply, encodeRing, encodeSpaceReply, encodeSpaceState,
} from '../../../agent/wire/allocation-codec.ts';
import { ReplicatedTables, diffAgainstDigest, makeDigest, signedFields, type WireEntry } from '../../../controlplane/tables/index.ts';
import { OwnerKeys } from '../../../agent/cluster/owner-keys.ts';
import { newPsk } from '../../../agent/cluster/psk.ts';
import { DatagramError, datagramKey, openDatagram, sealDatagram } from '../../../agent/cluster/swim-datagram.ts';
import type { SwimMessage, MemberUpdate } from '../../../controlplane/membership/index.ts';
import type { RingState } from '../../../controlplane/allocation/index.ts';
import type { FuzzTarget } from './target.ts';
import { ipArb, material, nameArb, nodeIdArb, objectIdArb, samples } from './material.ts';

const isFrameError = (error: unknown): boolean => error instanceof FrameError;

function wire(name: string, seeds: Uint8Array[], run: (input: Uint8Array) => unknown): FuzzTarget {
  return { name, group: 'wire', rejects: 'FrameError', seeds, run, isClean: isFrameError };
}

// ---------------------------------------------------------------- generators

const updateArb: fc.Arbitrary<MemberUpdate> = fc.record({
  node: nodeIdArb, address: ipArb, incarnation: fc.nat(), state: fc.constantFrom('alive', 'suspect', 'dead', 'left'), from: nodeIdArb,
});
const updatesArb = fc.array(updateArb, { maxLength: 6 });
const swimArb: fc.Arbitrary<SwimMessage> = fc.oneof(
  fc.record({ kind: fc.constant('ping' as const), seq: fc.nat(), target: nodeIdArb, sourceAddress: ipArb, updates: updatesArb }),
  fc.record({ kind: fc.constant('ack' as const), seq: fc.nat(), updates: updatesArb }),
  fc.record({ kind: fc.constant('pingReq' as const), seq: fc.nat(), target: nodeIdArb, targetAddress: ipArb, sourceAddress: ipArb, nack: fc.boolean(), updates: updatesArb }),
  fc.record({ kind: fc.constant('nack' as const), seq: fc.nat(), updates: updatesArb }),
  fc.record({ kind: fc.constant('gossip' as const), updates: updatesArb }),
);

const ringArb: fc.Arbitrary<RingState> = fc
  .record({ space: fc.constantFrom('vni', 'subnet', 'ip/0123456789ab'), start: fc.nat(1000), tokens: fc.array(fc.record({ owner: nodeIdArb, version: fc.nat(50), free: fc.nat(100) }), { maxLength: 5 }) })
  .map(({ space, start, tokens }) => ({
    space, start, end: start + 100 * (tokens.length + 1),
    tokens: tokens.map((t, i) => ({ ...t, start: start + 100 * i })),
  }));

const networkArb = fc.record({
  id: objectIdArb, name: nameArb, vni: fc.integer({ min: 1, max: 16_777_215 }), subnet: fc.constantFrom('100.64.1.0/24', '10.9.0.0/16'),
  gateway: fc.constantFrom('100.64.1.1', '10.9.0.1'), internal: fc.boolean(), createdBy: nodeIdArb, poolSubnet: fc.boolean(),
});
const endpointArb = fc.record({
  id: objectIdArb, networkId: objectIdArb, name: fc.oneof(fc.constant(''), nameArb), ip: ipArb, mac: fc.constantFrom('02:42:64:40:01:0a', '0a:58:64:40:01:0b'),
  nodeId: nodeIdArb, vtep: ipArb, sandbox: fc.constantFrom('weft-0011aabb', '/proc/123/ns/net'), aliases: fc.array(nameArb, { maxLength: 3 }),
  services: fc.array(nameArb, { maxLength: 3 }), unhealthyServices: fc.array(nameArb, { maxLength: 2 }),
});
const serviceArb = fc.oneof(
  fc.record({ mode: fc.constant('vip' as const), vip: ipArb }),
  fc.record({ mode: fc.constant('dnsrr' as const), vip: fc.constant('') }),
).chain((m) => fc.record({
  id: objectIdArb, name: nameArb, networkId: objectIdArb, mode: fc.constant(m.mode), vip: fc.constant(m.vip),
  ports: fc.array(fc.record({ port: fc.integer({ min: 1, max: 65_535 }), protocol: fc.constantFrom('tcp' as const, 'udp' as const) }), { maxLength: 4 }),
  health: fc.constantFrom({ kind: '' as const, port: 0 as const, path: '' as const }, { kind: 'tcp' as const, port: 80, path: '' as const }, { kind: 'http' as const, port: 8080, path: '/healthz' }),
  createdBy: nodeIdArb,
  publish: m.mode === 'vip' ? fc.uniqueArray(fc.record({ published: fc.integer({ min: 1, max: 65_535 }), target: fc.integer({ min: 1, max: 65_535 }), protocol: fc.constantFrom('tcp' as const, 'udp' as const), mode: fc.constantFrom('ingress' as const, 'host' as const) }), { maxLength: 3, selector: (p) => `${p.published}/${p.protocol}` }) : fc.constant<{ published: number; target: number; protocol: 'tcp' | 'udp'; mode: 'ingress' | 'host' }[]>([]),
}));

/** The agent's real spaces (agent/overlay/spaces.ts): VNIs, pool subnets, a /16's addresses. */
const SPACES: RingState[] = [
  { space: 'vni', start: 1, end: 16_777_216, tokens: [{ start: 1, owner: 'a1'.repeat(16), version: 3, free: 16_777_000 }] },
  { space: 'subnet', start: 0, end: 16_384, tokens: [{ start: 0, owner: 'a1'.repeat(16), version: 1, free: 16_000 }] },
  { space: 'ip/0123456789ab', start: 1_681_915_906, end: 1_681_981_439, tokens: [{ start: 1_681_915_906, owner: 'a1'.repeat(16), version: 9, free: 65_000 }] },
];

/** Entries as the agent's tables hold them: each table with values of its own type. */
function entries(count: number): WireEntry[] {
  const values = [
    ...samples(networkArb, count).map((n) => ({ table: 'networks', key: n.name, value: encodeNetwork(n) })),
    ...samples(serviceArb, count).map((s) => ({ table: 'services', key: s.name, value: encodeService(s) })),
    ...samples(endpointArb, count).map((e) => ({ table: `endpoints/${e.networkId}`, key: e.id, value: encodeEndpoint(e) })),
    ...samples(ringArb, count).map((r) => ({ table: 'allocations', key: r.space, value: encodeRing(r) })),
    ...samples(fc.tuple(objectIdArb, nodeIdArb), count).map(([n, h]) => ({ table: 'network-hosts', key: `${n}|${h}`, value: new Uint8Array() })),
  ];
  const lamports = samples(fc.record({ lamport: fc.nat(1_000_000), owner: nodeIdArb, deleted: fc.boolean() }), values.length, 11);
  return values.map((v, i) => {
    const l = lamports[i]!;
    return { ...v, owner: l.owner, lamport: l.lamport, deleted: l.deleted, reapInMs: l.deleted ? 1_800_000 : 0 };
  });
}

// ---------------------------------------------------------------- targets

/** A SWIM datagram (swim-udp.ts) as the recipient opens it: envelope, signature, then the packet. */
function swimDatagrams(sender: string, recipient: string, psk: Uint8Array, signer: OwnerKeys, peerId: string, packets: Uint8Array[]): FuzzTarget {
  const key = datagramKey(psk);
  const seeds = packets.map((payload) => new Uint8Array(sealDatagram({ key, sender, recipient, payload, sign: (b) => signer.sign(b) })));
  const verify = (nodeId: string, bytes: Uint8Array, signature: Uint8Array): boolean => nodeId === sender && signer.verifyByPeer(peerId, bytes, signature);
  return {
    name: 'swim.datagram', group: 'wire', rejects: 'DatagramError or FrameError', seeds,
    run: (input) => decodeSwim(openDatagram(key, recipient, input, verify).payload),
    isClean: (error) => error instanceof DatagramError || isFrameError(error),
  };
}

export async function wireTargets(): Promise<FuzzTarget[]> {
  const m = await material();
  // Signed as a member signs them, so seeds carry the signature field (owner-keys.ts).
  const signer = new OwnerKeys(m.keys.libp2pKey);
  const tableEntries = entries(6).map((e) => ({ ...e, signature: signer.sign(signedFields(e)) }));
  const tables = new ReplicatedTables({ self: m.nodeId });
  tables.applySynced(Date.now(), m.nodeId, tableEntries);
  const scope = tables.tableNames();
  const digest = makeDigest(tables, scope);
  const reply = diffAgainstDigest(Date.now(), tables, { tables: scope, buckets: [] });
  const snapshots = [
    encodeSnapshot({ members: [m.member], token: { secret: m.token.secret, version: 2, changedBy: m.nodeId }, settings: { defaultAddrPool: '100.64.0.0/10' } }),
    encodeSnapshot({ members: [], summary: [{ nodeId: m.nodeId, version: 3, status: 'active', changedBy: m.nodeId }], membership: encodeSwimSnapshot({ from: m.nodeId, members: [{ node: m.nodeId, address: '198.18.0.2:7946', incarnation: 4, state: 'alive' }] }) }),
    encodeSnapshot({ members: [m.member, { ...m.member, status: 'left', version: 9 }] }),
  ];
  const swim = samples(swimArb, 40).map(encodeSwim);
  const rings = [...samples(ringArb, 20), ...SPACES];
  const ids = { from: m.nodeId, to: 'b2'.repeat(16) };
  const refusal = (ring: RingState) => ({ space: ring.space, ...ids, reason: 'not-owner' as const, ring });

  return [
    wire('swim.packet', swim, decodeSwim),
    swimDatagrams(m.nodeId, ids.to, newPsk(), signer, m.peerId, swim),
    wire('swim.snapshot', samples(fc.record({ from: nodeIdArb, members: fc.array(updateArb.map(({ from: _, ...u }) => u), { maxLength: 8 }) }), 20).map(encodeSwimSnapshot), decodeSwimSnapshot),
    wire('gossip.envelope', [encodeEnvelope({ members: [m.member] }), encodeEnvelope({ members: [m.member], token: { secret: m.token.secret, version: 5, changedBy: m.nodeId } }), encodeEnvelope({ members: [{ ...m.member, status: 'revoked', changedBy: ids.to }] })], decodeEnvelope),
    wire('cluster.snapshot', snapshots, decodeSnapshot),
    wire('sync.open', snapshots.map((s) => encodeSyncOpen({ snapshot: s, body: encodeDigest(digest) })), (input) => {
      const open = decodeSyncOpen(input);
      return [decodeSnapshot(open.snapshot), decodeDigest(open.body)];
    }),
    wire('sync.answer', snapshots.map((s) => encodeSyncAnswer({ snapshot: s, body: encodeSyncReply(reply) })), (input) => {
      const answer = decodeSyncAnswer(input);
      return [decodeSnapshot(answer.snapshot), decodeSyncReply(answer.body)];
    }),
    wire('sync.close', [encodeSyncClose({ finish: encodeSyncFinish(tableEntries), members: [m.member] }), encodeSyncClose({ finish: encodeSyncFinish([]), members: [] })], (input) => {
      const close = decodeSyncClose(input);
      return decodeSyncFinish(close.finish);
    }),
    wire('tables.batch', [encodeEntryBatch(tableEntries), ...tableEntries.map((e) => encodeEntryBatch([e]))], (input) => decodeEntryBatch(input).entries.map(decodeValue)),
    wire('objects.network', samples(networkArb, 20).map(encodeNetwork), decodeNetwork),
    wire('objects.endpoint', samples(endpointArb, 20).map(encodeEndpoint), decodeEndpoint),
    wire('objects.service', samples(serviceArb, 20).map(encodeService), decodeService),
    wire('alloc.request', [
      ...rings.slice(0, 5).map((ring) => encodeAllocCall({ kind: 'handover', request: { space: ring.space, ...ids, ring, allocated: [ring.start + 1, ring.start + 7] } })),
      encodeAllocCall({ kind: 'space', request: { space: 'vni', ...ids } }),
      encodeAllocCall({ kind: 'space', request: { space: 'vni', ...ids, value: 4097 } }),
      encodeAllocCall({ kind: 'free', request: { space: 'ip/0123456789ab', ...ids, value: 1_681_915_914 } }),
    ], decodeAllocCall),
    wire('alloc.space-reply', rings.slice(0, 10).flatMap((ring) => [
      encodeSpaceReply({ kind: 'donated', donation: { space: ring.space, ...ids, ring, allocated: [] } }),
      encodeSpaceReply({ kind: 'refused', refusal: refusal(ring) }),
    ]), decodeSpaceReply),
    wire('alloc.free-reply', rings.slice(0, 10).flatMap((ring) => [
      encodeFreeReply({ kind: 'freed', space: ring.space, value: ring.start + 3 }),
      encodeFreeReply({ kind: 'refused', refusal: { ...refusal(ring), reason: 'not-allocated', value: ring.start } }),
    ]), (input) => decodeFreeReply(input, 'vni')),
    wire('alloc.handover-reply', [encodeHandoverReply({ accepted: true, reason: '' }), encodeHandoverReply({ accepted: false, reason: 'ring conflict on vni' })], decodeHandoverReply),
    wire('alloc.ring', rings.map(encodeRing), decodeRing),
    wire('alloc.state-file', [...rings, ...SPACES].map((ring) => encodeSpaceState({ ring, allocated: [ring.start, ring.start + 1, ring.start + 5, ring.end - 1] })), (input) => decodeSpaceState(input, 'saved allocation state')),
  ];
}

/** What the consumers of each table do with a value: decode it as that table's object. */
function decodeValue(entry: WireEntry): unknown {
  if (entry.deleted) return entry;
  if (entry.table === 'networks') return decodeNetwork(entry.value);
  if (entry.table === 'services') return decodeService(entry.value);
  if (entry.table === 'allocations') return decodeRing(entry.value);
  if (entry.table.startsWith('endpoints/')) return decodeEndpoint(entry.value);
  return entry;
}
