// The agent API's JSON-line framing, shared by its two ends (the agent's
// socket, api-socket.ts, and the CLI's client, client.ts). It carries the
// same methods and messages as the gRPC service in proto/agent.proto: the
// agent passes every request and reply through agent.proto's codec, so a
// JSON-line caller sees exactly what a gRPC caller sees. It exists because a
// CLI process that loads node:http2 and a protobuf codec cannot stay under
// 60 MB (docs/cli.md). One connection carries one call:
//   client → agent: {"method":"Members","request":{...}}\n
//   agent → client: {"code":0,"reply":{...}}\n  or  {"code":5,"message":"..."}\n
// then the agent ends the connection. Codes are gRPC status codes.

/** gRPC status codes this framing uses. */
export const STATUS = { ok: 0, invalidArgument: 3, deadlineExceeded: 4, notFound: 5, resourceExhausted: 8, unimplemented: 12, internal: 13, unavailable: 14 } as const;

/** The largest request line the agent reads, and reply line the CLI reads (gRPC's default limit). */
export const MAX_LINE_BYTES = 4 * 1024 * 1024;

export interface JsonRequest {
  method: string;
  request: unknown;
}

export type JsonReply = { code: 0; reply: unknown } | { code: number; message: string };
