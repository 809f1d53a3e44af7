// Loads the .proto files once. gRPC services go through @grpc/proto-loader;
// gossip and sync messages through protobufjs reflection. Decoded messages are
// untrusted until a zod schema (see cluster-codec.ts, api-schemas.ts) accepts them.
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import protobuf from 'protobufjs';
import { fileURLToPath } from 'node:url';

export const PROTO_DIR = fileURLToPath(new URL('../../proto/', import.meta.url));

const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: false,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
  includeDirs: [PROTO_DIR],
};

function loadGrpcPackage(file: string): grpc.GrpcObject {
  return grpc.loadPackageDefinition(protoLoader.loadSync(file, LOADER_OPTIONS));
}

function serviceOf(pkg: grpc.GrpcObject, path: string[]): grpc.ServiceClientConstructor {
  let node: unknown = pkg;
  for (const part of path) node = (node as Record<string, unknown>)[part];
  return node as grpc.ServiceClientConstructor;
}

export const AgentApiService = serviceOf(loadGrpcPackage('agent.proto'), ['weft', 'agent', 'AgentApi']);
export const AdmissionService = serviceOf(loadGrpcPackage('admission.proto'), ['weft', 'admission', 'Admission']);

const clusterRoot = protobuf.loadSync(PROTO_DIR + 'cluster.proto');
export const SnapshotType = clusterRoot.lookupType('weft.cluster.Snapshot');
export const EnvelopeType = clusterRoot.lookupType('weft.cluster.Envelope');
export const SyncCloseType = clusterRoot.lookupType('weft.cluster.SyncClose');

export const clusterSyncTypes = {
  SyncOpen: clusterRoot.lookupType('weft.cluster.SyncOpen'),
  SyncAnswer: clusterRoot.lookupType('weft.cluster.SyncAnswer'),
};

const tablesRoot = protobuf.loadSync(PROTO_DIR + 'tables.proto');
export const tablesTypes = {
  EntryBatch: tablesRoot.lookupType('weft.tables.EntryBatch'),
  Digest: tablesRoot.lookupType('weft.tables.Digest'),
  SyncReply: tablesRoot.lookupType('weft.tables.SyncReply'),
  SyncFinish: tablesRoot.lookupType('weft.tables.SyncFinish'),
};

const objectsRoot = protobuf.loadSync(PROTO_DIR + 'objects.proto');
export const objectTypes = {
  Network: objectsRoot.lookupType('weft.objects.Network'),
  Endpoint: objectsRoot.lookupType('weft.objects.Endpoint'),
};

const allocationRoot = protobuf.loadSync(PROTO_DIR + 'allocation.proto');
export const allocationTypes = {
  Ring: allocationRoot.lookupType('weft.alloc.Ring'),
  AllocRequest: allocationRoot.lookupType('weft.alloc.AllocRequest'),
  SpaceReply: allocationRoot.lookupType('weft.alloc.SpaceReply'),
  FreeReply: allocationRoot.lookupType('weft.alloc.FreeReply'),
};

const swimRoot = protobuf.loadSync(PROTO_DIR + 'swim.proto');
export const SwimPacketType = swimRoot.lookupType('weft.swim.SwimPacket');
export const SwimSnapshotType = swimRoot.lookupType('weft.swim.Snapshot');

/** protobufjs decode → plain object with numbers for 64-bit fields and bytes as Uint8Array. */
export function decodePlain(type: protobuf.Type, bytes: Uint8Array): unknown {
  const message = type.decode(bytes);
  return type.toObject(message, { longs: Number, defaults: true, oneofs: true });
}

export function encodePlain(type: protobuf.Type, value: Record<string, unknown>): Uint8Array {
  return type.encode(type.fromObject(value)).finish();
}
