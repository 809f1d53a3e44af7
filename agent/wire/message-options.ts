// How protobuf messages become plain objects on both ends of the agent API:
// 64-bit numbers as numbers, enums by name, unset fields as their defaults.
// Shared by the server (through @grpc/proto-loader) and the CLI's client
// (through protobufjs), so both read a message the same way.
export const MESSAGE_OPTIONS = {
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
} as const;
