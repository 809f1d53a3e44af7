// Loads a gRPC service definition from its .proto file through
// @grpc/proto-loader. One file per service, so that the CLI, which only talks
// to the agent API, does not parse the cluster's protocols too.
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { fileURLToPath } from 'node:url';
import { MESSAGE_OPTIONS } from './message-options.ts';

export const PROTO_DIR = fileURLToPath(new URL('../../proto/', import.meta.url));

const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: false,
  ...MESSAGE_OPTIONS,
  includeDirs: [PROTO_DIR],
};

export function loadGrpcService(file: string, path: string[]): grpc.ServiceClientConstructor {
  let node: unknown = grpc.loadPackageDefinition(protoLoader.loadSync(file, LOADER_OPTIONS));
  for (const part of path) node = (node as Record<string, unknown>)[part];
  return node as grpc.ServiceClientConstructor;
}
