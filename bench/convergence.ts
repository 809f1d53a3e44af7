// Convergence and bandwidth of the replicated tables at scale, on the
// deterministic simulator: every node runs the real Membership,
// ReplicatedTables, Coalescer and anti-entropy code; gossipsub is a model
// (controlplane/sim/dissemination-gossipsub.ts, docs/simulation.md).
//
//   node bench/convergence.ts            (node = node_modules/.bin/node, v24)
//
// Prints tables and writes bench/results/convergence.json. Times are
// simulated; only the "sim cost" lines are real CPU time. Message sizes are
// protobuf encodings (protobufjs, the repository's .proto files and
// gossipsub's rpc.proto) of the messages the simulated nodes really send.

import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import { createClusterCa, generateEcKeyPair, issueNodeCertificate } from '../controlplane/security/certificates.ts';
import { GOSSIPSUB_DEFAULTS } from '../controlplane/sim/dissemination-gossipsub.ts';
import type { GossipMessage, GossipRpc } from '../controlplane/sim/dissemination-gossipsub.ts';
import { TablesCluster } from '../controlplane/sim/tables-cluster.ts';
import { DEFAULT_CONNECTIONS } from '../controlplane/sim/tables-connections.ts';
import { runConvergence, runPartitionHeal, runTraffic } from '../controlplane/sim/tables-convergence.ts';
import type { ConvergenceRunOptions, ConvergenceRunResult, TrafficRunResult } from '../controlplane/sim/tables-convergence.ts';
import { isRecordBatch, type GossipData, type MessageSize, type Sizer, type SyncMembership, type TablesWire } from '../controlplane/sim/tables-messages.ts';
import { DATAGRAM_OVERHEAD_BYTES } from '../agent/cluster/swim-datagram.ts';
import { DEFAULT_HOST_TIMING } from '../controlplane/sim/tables-node.ts';
import { makeDigest } from '../controlplane/tables/digest.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const NETWORK = { latencyMs: 10, jitterMs: 5, loss: 0.01 };
const started = performance.now();

// ---- message sizes ------------------------------------------------------------

const swimRoot = protobuf.loadSync(join(root, 'proto/swim.proto'));
const tablesRoot = protobuf.loadSync(join(root, 'proto/tables.proto'));
const clusterRoot = protobuf.loadSync(join(root, 'proto/cluster.proto'));
const rpcRoot = protobuf.loadSync(join(root, 'node_modules/@libp2p/gossipsub/src/message/rpc.proto'));
// weft.objects (endpoint and network values) is being written concurrently; fall back to its current shape.
const OBJECTS_FALLBACK = `syntax = "proto3"; package weft.objects;
message Network { string id = 1; string name = 2; uint32 vni = 3; string subnet = 4; string gateway = 5; bool internal = 6; string created_by = 7; bool pool_subnet = 8; }
message Endpoint { string id = 1; string network_id = 2; string name = 3; string ip = 4; string mac = 5; string node_id = 6; string vtep = 7; string sandbox = 8; repeated string aliases = 9; }`;
const objectsFile = join(root, 'proto/objects.proto');
const objectsRoot = existsSync(objectsFile) ? protobuf.loadSync(objectsFile) : protobuf.parse(OBJECTS_FALLBACK).root;

const T = {
  SwimPacket: swimRoot.lookupType('weft.swim.SwimPacket'),
  SwimSnapshot: swimRoot.lookupType('weft.swim.Snapshot'),
  EntryBatch: tablesRoot.lookupType('weft.tables.EntryBatch'),
  Digest: tablesRoot.lookupType('weft.tables.Digest'),
  SyncReply: tablesRoot.lookupType('weft.tables.SyncReply'),
  SyncFinish: tablesRoot.lookupType('weft.tables.SyncFinish'),
  ClusterSnapshot: clusterRoot.lookupType('weft.cluster.Snapshot'),
  Envelope: clusterRoot.lookupType('weft.cluster.Envelope'),
  SyncOpen: clusterRoot.lookupType('weft.cluster.SyncOpen'),
  SyncAnswer: clusterRoot.lookupType('weft.cluster.SyncAnswer'),
  Rpc: rpcRoot.lookupType('RPC'),
  Endpoint: objectsRoot.lookupType('weft.objects.Endpoint'),
  Network: objectsRoot.lookupType('weft.objects.Network'),
};

function encode(type: protobuf.Type, value: object): Uint8Array {
  return type.encode(type.fromObject(value as Record<string, unknown>)).finish();
}

// Gossipsub's signed-message fields (StrictSign, Ed25519 peer IDs): from is
// the 38-byte identity-multihash peer ID, seqno 8 bytes, signature 64 bytes,
// the key is inlined in the peer ID; a message ID is from + seqno.
const PEER_ID = new Uint8Array(38).fill(0xa5);
const SEQNO = new Uint8Array(8).fill(1);
const SIGNATURE = new Uint8Array(64).fill(2);
const MESSAGE_ID = new Uint8Array(46).fill(3);

// Transport framing, an estimate (docs/simulation.md): every write on a
// libp2p stream is one yamux frame (12 B header) in one Noise frame (2 B
// length + 16 B tag) in TCP/IP segments (52 B of headers each, 1448 B MSS).
// Pure ACKs are not counted. A new stream (each sync) adds 5 writes (SYN,
// multistream-select both ways, FIN both ways) and ~68 B of protocol names.
// SWIM packets are UDP datagrams (agent/cluster/swim-udp.ts): sealing plus
// 28 B of UDP/IP headers each.
const YAMUX = 12;
const NOISE = 18;
const TCPIP = 52;
const UDPIP = 28;
const MSS = 1448;
const STREAM_SETUP = 5 * (YAMUX + NOISE + TCPIP) + 68;
const varintLength = (n: number) => (n < 128 ? 1 : n < 16_384 ? 2 : n < 2_097_152 ? 3 : 4);
function framed(payload: number): number {
  const lp = payload + varintLength(payload);
  const noiseFrames = Math.max(1, Math.ceil(lp / 65_519));
  const bytes = lp + YAMUX * noiseFrames + NOISE * noiseFrames;
  return bytes + TCPIP * Math.max(1, Math.ceil(bytes / MSS));
}

const batchBytes = new WeakMap<GossipMessage<GossipData>, Uint8Array>();
function rpcMessage(m: GossipMessage<GossipData>) {
  let data = batchBytes.get(m);
  if (data === undefined) batchBytes.set(m, (data = isRecordBatch(m.data) ? encode(T.Envelope, { members: m.data.members }) : encode(T.EntryBatch, { entries: m.data })));
  return { from: PEER_ID, data, seqno: SEQNO, topic: m.topic, signature: SIGNATURE };
}
const singleMessageRpc = new WeakMap<GossipMessage<GossipData>, number>();
function rpcSize(rpc: GossipRpc<GossipData>): number {
  const onlyOne = rpc.messages.length === 1 && rpc.ihave.length + rpc.iwant.length + rpc.graft.length + rpc.prune.length === 0;
  const cached = onlyOne ? singleMessageRpc.get(rpc.messages[0] as GossipMessage<GossipData>) : undefined;
  if (cached !== undefined) return cached;
  const control =
    rpc.ihave.length + rpc.iwant.length + rpc.graft.length + rpc.prune.length === 0
      ? undefined
      : {
        ihave: rpc.ihave.map((h) => ({ topicID: h.topic, messageIDs: h.ids.map(() => MESSAGE_ID) })),
        iwant: rpc.iwant.length === 0 ? [] : [{ messageIDs: rpc.iwant.map(() => MESSAGE_ID) }],
        graft: rpc.graft.map((topicID) => ({ topicID })),
        prune: rpc.prune.map((topicID) => ({ topicID, backoff: 60 })),
      };
  const size = encode(T.Rpc, { messages: rpc.messages.map(rpcMessage), ...(control === undefined ? {} : { control }) }).length;
  if (onlyOne) singleMessageRpc.set(rpc.messages[0] as GossipMessage<GossipData>, size);
  return size;
}

// The agent's sync also carries its token record and settings; the roster is accounted apart.
const TOKEN = { secret: new Uint8Array(32).fill(9), version: 1, changedBy: 'f'.repeat(32) };
const SETTINGS = { defaultAddrPool: '100.64.0.0/10' };
const DIGEST = new Uint8Array(16).fill(4);
// A full round carries the liveness snapshot; a digest round (the periodic one) the two 16-byte hashes instead.
const clusterSnapshot = (sync: SyncMembership) =>
  encode(
    T.ClusterSnapshot,
    sync.snapshot === undefined
      ? { members: [], token: TOKEN, settings: SETTINGS, rosterDigest: DIGEST, membershipDigest: DIGEST }
      : { members: [], token: TOKEN, settings: SETTINGS, membership: encode(T.SwimSnapshot, sync.snapshot) },
  );

const sizer: Sizer = (message: TablesWire): MessageSize => {
  switch (message.kind) {
    case 'swim': {
      const { kind, ...body } = message.message;
      const payload = encode(T.SwimPacket, { [kind]: body }).length;
      return { payload, wire: payload + DATAGRAM_OVERHEAD_BYTES + UDPIP };
    }
    case 'gossipsub': {
      const payload = rpcSize(message.rpc);
      return { payload, wire: framed(payload) };
    }
    case 'sync-open': {
      const payload = encode(T.SyncOpen, { snapshot: clusterSnapshot(message), digest: encode(T.Digest, message.digest) }).length;
      return { payload, wire: framed(payload) + STREAM_SETUP };
    }
    case 'sync-answer': {
      const payload = encode(T.SyncAnswer, { snapshot: clusterSnapshot(message), reply: encode(T.SyncReply, message.reply) }).length;
      return { payload, wire: framed(payload) };
    }
    case 'sync-finish': {
      const payload = encode(T.SyncFinish, { entries: message.entries }).length;
      return { payload, wire: framed(payload) };
    }
  }
};

const NETWORK_ID = '3f9a0c21b7d4';
const hexOf = (seed: number, length: number) => Array.from({ length }, (_, i) => ((seed * 2654435761 + i * 40503) >>> (i % 24)) & 15).map((d) => d.toString(16)).join('');
function endpointValue(node: string, endpointId: string): Uint8Array {
  const n = parseInt(endpointId.slice(0, 4), 16);
  return encode(T.Endpoint, {
    id: endpointId,
    networkId: NETWORK_ID,
    name: `web-${n % 100}`,
    ip: `100.64.${(n >> 8) & 255}.${n & 255}`,
    mac: `02:42:64:40:${((n >> 8) & 255).toString(16).padStart(2, '0')}:${(n & 255).toString(16).padStart(2, '0')}`,
    nodeId: node,
    vtep: '198.18.0.42',
    sandbox: `/run/netns/weft-${endpointId.slice(0, 8)}`,
    aliases: [],
  });
}
const networkValue = encode(T.Network, { id: NETWORK_ID, name: 'net1', vni: 4097, subnet: '100.64.3.0/24', gateway: '100.64.3.1', internal: false, createdBy: hexOf(1, 32), poolSubnet: true });
const ENDPOINT_BYTES = endpointValue(hexOf(7, 32), '0a1b2c3d4e5f');

// ---- convergence ----------------------------------------------------------------

function percentile(values: readonly number[], p: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)] ?? null;
}
const round1 = (x: number | null) => (x === null ? null : Math.round(x * 10) / 10);

function convergence(label: string, n: number, seeds: number, extra: Partial<ConvergenceRunOptions> = {}) {
  const cpu = process.cpuUsage();
  const runs: ConvergenceRunResult[] = [];
  for (let seed = 1; seed <= seeds; seed++) runs.push(runConvergence({ n, seed, network: NETWORK, value: ENDPOINT_BYTES, ...extra }));
  const used = process.cpuUsage(cpu);
  const of = (pick: (r: ConvergenceRunResult) => number | null) => runs.map(pick).filter((x): x is number => x !== null);
  return {
    label,
    n,
    seeds,
    p50Ms: round1(percentile(of((r) => r.p50Ms), 0.5)),
    p999Ms: round1(percentile(of((r) => r.p999Ms), 0.5)),
    p100Ms: round1(percentile(of((r) => r.p100Ms), 0.5)),
    worstP100Ms: round1(percentile(of((r) => r.p100Ms), 1)),
    incompleteRuns: runs.filter((r) => r.reached < n).length,
    meanDegree: round1(runs.reduce((s, r) => s + r.meanDegree, 0) / runs.length),
    copiesPerNode: round1(runs.reduce((s, r) => s + r.copiesPerNode, 0) / runs.length),
    viaIwant: runs.reduce((s, r) => s + r.viaIwant, 0),
    cpuSecondsPerRun: Math.round((used.user + used.system) / 1e4 / seeds) / 100,
    runs,
  };
}

const conv = [convergence('default', 10, 20), convergence('default', 100, 20), convergence('default', 1000, 5)];
const rssAfter1000 = Math.round(process.memoryUsage().rss / 1e6);
const ablations = [
  convergence('full mesh (agent today)', 100, 10, { connections: { dial: 99 } }),
  convergence('floodPublish off', 1000, 3, { gossipsub: { floodPublish: false } }),
  convergence('dial 10 (degree ~20)', 1000, 3, { connections: { dial: 10 } }),
  convergence('10% loss', 1000, 3, { network: { ...NETWORK, loss: 0.1 } }),
];

const ms = (x: number | null) => (x === null ? '-' : x.toFixed(1));
console.log(`endpoint entry: tables.set on one node -> visible on 50% / 99.9% / 100% of nodes (simulated ms, p50 over seeds)`);
console.log(`network ${NETWORK.latencyMs}±${NETWORK.jitterMs} ms one way, ${NETWORK.loss * 100}% loss; gossipsub D=${GOSSIPSUB_DEFAULTS.D} (${GOSSIPSUB_DEFAULTS.Dlo}-${GOSSIPSUB_DEFAULTS.Dhi}), floodPublish; coalesce ${DEFAULT_HOST_TIMING.coalesceMs} ms, sign ${DEFAULT_HOST_TIMING.signMs} ms, validate ${DEFAULT_HOST_TIMING.validateMs} ms per hop`);
console.log('variant                     N  seeds    50%   99.9%    100%  worst 100%  degree  copies/node  via IWANT  CPU s/run');
for (const c of [...conv, ...ablations]) {
  console.log(
    `${c.label.padEnd(23)} ${String(c.n).padStart(5)}  ${String(c.seeds).padStart(5)}  ${ms(c.p50Ms).padStart(5)}  ${ms(c.p999Ms).padStart(6)}  ${ms(c.p100Ms).padStart(6)}  ${ms(c.worstP100Ms).padStart(10)}  ${String(c.meanDegree).padStart(6)}  ${String(c.copiesPerNode).padStart(11)}  ${String(c.viaIwant).padStart(9)}  ${c.cpuSecondsPerRun.toFixed(2).padStart(9)}`,
  );
}
console.log(`RSS after the N = 1000 runs: ${rssAfter1000} MB`);

// ---- bandwidth ------------------------------------------------------------------

/** A real node certificate, to size the roster that the agent's sync ships (outside the simulator). */
async function rosterRecordBytes(): Promise<{ certificateBytes: number; recordBytes: number; summaryBytes: number }> {
  const now = new Date();
  const ca = await createClusterCa(now);
  const keys = await generateEcKeyPair();
  const nodeId = hexOf(3, 32);
  const peerId = `12D3KooW${'A'.repeat(44)}`;
  const certificate = await issueNodeCertificate(ca, { nodeId, peerId, publicKeySpki: keys.publicKeySpki, ip: '198.18.0.42' }, now);
  const record = { nodeId, name: 'host-042', peerId, address: '198.18.0.42', gossipPort: 7946, admissionPort: 7947, certificate, version: 3, status: 'active', changedBy: nodeId };
  const one = encode(T.ClusterSnapshot, { members: [record] }).length;
  const summary = encode(T.ClusterSnapshot, { summary: [{ nodeId, version: 3, status: 'active', changedBy: nodeId }] }).length;
  return { certificateBytes: certificate.length, recordBytes: one, summaryBytes: summary };
}

interface Component {
  name: string;
  classes: (cls: string) => boolean;
}
const COMPONENTS: Component[] = [
  { name: 'SWIM probes + gossip', classes: (c) => c.startsWith('swim/') },
  { name: 'sync (table digest + liveness snapshot or hash)', classes: (c) => c.startsWith('sync/') },
  { name: 'gossipsub messages', classes: (c) => c === 'gossipsub/message' },
  { name: 'gossipsub IHAVE/IWANT/GRAFT/PRUNE', classes: (c) => c.startsWith('gossipsub/') && c !== 'gossipsub/message' },
];

function summarise(run: TrafficRunResult) {
  const rows = COMPONENTS.map(({ name, classes }) => {
    const sum = { messages: 0, payload: 0, wire: 0 };
    for (const [cls, t] of Object.entries(run.perNodePerSecond)) {
      if (!classes(cls)) continue;
      sum.messages += t.messages;
      sum.payload += t.payload;
      sum.wire += t.wire;
    }
    return { name, msgsPerSecond: round1(sum.messages), payloadBytesPerSecond: Math.round(sum.payload), wireBytesPerSecond: Math.round(sum.wire) };
  });
  const total = rows.reduce((s, r) => ({ payload: s.payload + r.payloadBytesPerSecond, wire: s.wire + r.wireBytesPerSecond }), { payload: 0, wire: 0 });
  return { rows, totalPayloadBytesPerSecond: total.payload, totalWireBytesPerSecond: total.wire };
}

const kbit = (bytesPerSecond: number) => ((bytesPerSecond * 8) / 1000).toFixed(2);
function printTraffic(title: string, run: TrafficRunResult, s: ReturnType<typeof summarise>) {
  console.log(`\n${title}`);
  console.log(`N = ${run.n}, ${run.entries} endpoint entries, mean degree ${run.meanDegree.toFixed(1)}, window ${run.measureMs / 1000} s, converged at end: ${run.convergedAtEnd}`);
  console.log('component                              msgs/s   payload B/s  payload kbit/s   wire kbit/s (modelled framing)');
  for (const r of s.rows) {
    console.log(`${r.name.padEnd(36)} ${String(r.msgsPerSecond).padStart(8)}  ${String(r.payloadBytesPerSecond).padStart(12)}  ${kbit(r.payloadBytesPerSecond).padStart(14)}  ${kbit(r.wireBytesPerSecond).padStart(12)}`);
  }
  console.log(`${'total (simulated protocols)'.padEnd(36)} ${''.padStart(8)}  ${String(s.totalPayloadBytesPerSecond).padStart(12)}  ${kbit(s.totalPayloadBytesPerSecond).padStart(14)}  ${kbit(s.totalWireBytesPerSecond).padStart(12)}`);
}

const trafficCpu = process.cpuUsage();
const common = { n: 100, sizer, network: NETWORK, networkId: NETWORK_ID, endpointsPerNode: 5, endpointValue, networkValue };
const steadyRun = runTraffic({ ...common, seed: 1 });
const churnRun = runTraffic({ ...common, seed: 2, churn: { writesPerSecond: 10, crashRestart: true } });
const trafficCpuSeconds = (() => {
  const u = process.cpuUsage(trafficCpu);
  return Math.round((u.user + u.system) / 1e4) / 100;
})();
const steady = summarise(steadyRun);
const churn = summarise(churnRun);
printTraffic('steady state: bytes sent per node per second, no table changes', steadyRun, steady);
printTraffic('churn: 10 endpoint adds/removes per second cluster-wide, one node crashes 10 s in and restarts 30 s later', churnRun, churn);

/** What one sync open is made of at N = 100 (5 endpoints per node), for the breakdown in docs/simulation.md. */
function syncOpenParts() {
  const cluster = new TablesCluster({ n: 100, seed: 1, naming: 'realistic', networksOf: () => [NETWORK_ID] });
  cluster.ids.forEach((id, i) => {
    for (let k = 0; k < 5; k++) {
      const ep = `${(i * 5 + k).toString(16).padStart(12, '0')}`;
      cluster.write(id, `endpoints/${NETWORK_ID}`, ep, endpointValue(id, ep));
    }
  });
  cluster.sim.runUntil(3_000);
  const node = cluster.node(cluster.ids[0] as string);
  const digest = makeDigest(node.tables, node.scope());
  return {
    digestBuckets: digest.buckets.length,
    digestBytes: encode(T.Digest, digest).length,
    swimSnapshotMembers: node.membership.snapshot().members.length,
    swimSnapshotBytes: encode(T.SwimSnapshot, node.membership.snapshot()).length,
    endpointEntryBytes: encode(T.EntryBatch, { entries: [node.tables.stored(`endpoints/${NETWORK_ID}`)[0]] }).length,
  };
}
const parts = syncOpenParts();
console.log(
  `\nsizes at N = 100: digest ${parts.digestBytes} B (${parts.digestBuckets} buckets), membership snapshot ${parts.swimSnapshotBytes} B (${parts.swimSnapshotMembers} members), one endpoint entry in an EntryBatch ${parts.endpointEntryBytes} B`,
);

// Outside the simulator, estimated from the simulated sync rate and connection count.
const roster = await rosterRecordBytes();
// A full round's open and answer each summarise the whole roster; records travel only where they differ (none when quiet).
const rosterBytesPerSecond = Math.round(steadyRun.syncSnapshotsPerNodePerSecond * roster.summaryBytes * steadyRun.n);
// yamux keep-alive: each side pings every connection every 30 s and answers the other's
// ping. (libp2p's connection monitor is off in the agent: agent/cluster/libp2p-node.ts.)
const yamuxKeepaliveBytes = 2 * (YAMUX + NOISE + TCPIP);
const backgroundBytesPerSecond = Math.round(steadyRun.meanDegree * (yamuxKeepaliveBytes / 30));
console.log('\nnot simulated, estimated for the same cluster (see docs/simulation.md):');
console.log(
  `  roster summary in every full-round open/answer (agent): ${steadyRun.n} x ${roster.summaryBytes} B (a record with its certificate, ${roster.recordBytes} B, only where they differ), ${steadyRun.syncSnapshotsPerNodePerSecond.toFixed(3)} full opens+answers/node/s -> ${kbit(rosterBytesPerSecond)} kbit/s`,
);
console.log(`  yamux keep-alive (30 s) on ${steadyRun.meanDegree.toFixed(1)} connections (libp2p's connection monitor is off in the agent): ${kbit(backgroundBytesPerSecond)} kbit/s`);

// ---- partition heal, production path ----------------------------------------------

const heals = [1, 2, 3, 4, 5].map((seed) => runPartitionHeal({ n: 100, seed, network: NETWORK }));
const healsFullMesh = [1, 2, 3, 4, 5].map((seed) => runPartitionHeal({ n: 100, seed, network: NETWORK, connections: { dial: 99 } }));
console.log('\n30% partition of N = 100 for 60 s, writes on both sides, then heal (the connections of dead members dropped, re-dialled every second, sync on connect):');
console.log('connections         seed  no link across  stored equal ms  visible equal ms  syncs');
for (const [label, list] of [['random, degree ~28', heals], ['full mesh', healsFullMesh]] as const) {
  for (const h of list) {
    console.log(`${label.padEnd(18)}  ${String(h.seed).padStart(4)}  ${String(h.isolated).padStart(14)}  ${ms(h.storedMs).padStart(15)}  ${ms(h.visibleMs).padStart(16)}  ${String(h.syncs).padStart(5)}`);
  }
}

const runtimeMs = Math.round(performance.now() - started);
const results = {
  benchmark: 'convergence',
  generatedAt: new Date().toISOString(),
  node: process.version,
  network: NETWORK,
  gossipsub: GOSSIPSUB_DEFAULTS,
  host: DEFAULT_HOST_TIMING,
  connections: DEFAULT_CONNECTIONS,
  endpointValueBytes: ENDPOINT_BYTES.length,
  convergence: conv,
  ablations,
  rssMBAfterN1000: rssAfter1000,
  bandwidth: {
    framing: { yamux: YAMUX, noise: NOISE, tcpip: TCPIP, mss: MSS, streamSetup: STREAM_SETUP },
    sizesAtN100: parts,
    steady: { ...steady, run: steadyRun },
    churn: { ...churn, run: churnRun },
    notSimulated: {
      rosterRecordBytes: roster.recordBytes,
      certificateBytes: roster.certificateBytes,
      rosterBytesPerSecondPerNode: rosterBytesPerSecond,
      libp2pBackgroundBytesPerSecondPerNode: backgroundBytesPerSecond,
    },
    cpuSeconds: trafficCpuSeconds,
  },
  partitionHeal: { randomDegree28: heals, fullMesh: healsFullMesh },
  runtimeMs,
};
const out = join(root, 'bench', 'results', 'convergence.json');
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, `${JSON.stringify(results, null, 2)}\n`);
console.log(`\nwrote ${out} (${(runtimeMs / 1000).toFixed(1)} s)`);
