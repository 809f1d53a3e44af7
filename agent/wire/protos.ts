// Loads the .proto files once. gRPC services go through @grpc/proto-loader;
// gossip and sync messages through protobufjs reflection. Decoded messages are
// untrusted until a zod schema (see cluster-codec.ts, api-schemas.ts) accepts them.
import protobuf from 'protobufjs';
import { PROTO_DIR, loadGrpcService } from './grpc-service.ts';

export { PROTO_DIR };
export { AgentApiService } from './agent-api-service.ts';
export const AdmissionService = loadGrpcService('admission.proto', ['weft', 'admission', 'Admission']);

/** Loads one .proto file and looks up the named messages of its package. */
function messageTypes<const N extends string>(file: string, pkg: string, names: readonly N[]): Record<N, protobuf.Type> {
  const root = protobuf.loadSync(PROTO_DIR + file);
  return Object.fromEntries(names.map((name) => [name, root.lookupType(`${pkg}.${name}`)])) as Record<N, protobuf.Type>;
}

const clusterTypes = messageTypes('cluster.proto', 'weft.cluster', ['Snapshot', 'Envelope', 'SyncClose', 'SyncOpen', 'SyncAnswer']);
export const SnapshotType = clusterTypes.Snapshot;
export const EnvelopeType = clusterTypes.Envelope;
export const SyncCloseType = clusterTypes.SyncClose;
export const clusterSyncTypes = { SyncOpen: clusterTypes.SyncOpen, SyncAnswer: clusterTypes.SyncAnswer };
export const tablesTypes = messageTypes('tables.proto', 'weft.tables', ['EntryBatch', 'Digest', 'SyncReply', 'SyncFinish']);
export const objectTypes = messageTypes('objects.proto', 'weft.objects', ['Network', 'Endpoint', 'Service']);
export const allocationTypes = messageTypes('allocation.proto', 'weft.alloc', ['Ring', 'AllocRequest', 'SpaceReply', 'FreeReply']);
const swimTypes = messageTypes('swim.proto', 'weft.swim', ['SwimPacket', 'Snapshot']);
export const SwimPacketType = swimTypes.SwimPacket;
export const SwimSnapshotType = swimTypes.Snapshot;

/** protobufjs decode → plain object with numbers for 64-bit fields and bytes as Uint8Array. */
export function decodePlain(type: protobuf.Type, bytes: Uint8Array): unknown {
  const message = type.decode(bytes);
  return type.toObject(message, { longs: Number, defaults: true, oneofs: true });
}

export function encodePlain(type: protobuf.Type, value: Record<string, unknown>): Uint8Array {
  return type.encode(type.fromObject(value)).finish();
}
