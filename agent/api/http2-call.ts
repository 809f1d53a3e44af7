// One agent API call over node:http2 speaking gRPC's framing, for a process
// that makes a single call and exits (the CNI plugin, once per container
// start): loading @grpc/grpc-js costs it ~100 ms, more than the call.
// gRPC over HTTP/2 (grpc/doc/PROTOCOL-HTTP2.md): POST to /Service/Method with
// content-type application/grpc; each message is a 1-byte compressed flag
// (0 here), a 4-byte big-endian length and the protobuf bytes; the status is
// the grpc-status trailer (or header, in a trailers-only reply) and
// grpc-message, percent-encoded. Message shapes come from proto/ (methods.ts).
import http2 from 'node:http2';
import { connect } from 'node:net';
import { ApiCallError } from './call-error.ts';
import { API_METHODS } from './methods.ts';

/** gRPC status codes this module produces or callers test for. */
export const GRPC_STATUS = { ok: 0, invalidArgument: 3, deadlineExceeded: 4, notFound: 5, internal: 13, unavailable: 14 } as const;

/** A reply larger than this is not the agent's: refuse it instead of buffering it. */
const MAX_REPLY_BYTES = 4 * 1024 * 1024;

/** Frames one message: flag 0 (not compressed), length, bytes. */
export function frameMessage(message: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(message.length, 1);
  return Buffer.concat([head, message]);
}

/** The one message of a unary reply body; throws when the framing is not that. */
export function unframeMessage(body: Buffer): Buffer {
  if (body.length < 5) throw new Error(`reply body of ${body.length} bytes is not a gRPC message`);
  if (body[0] !== 0) throw new Error('reply message is compressed; this client asks for none');
  const length = body.readUInt32BE(1);
  if (body.length !== 5 + length) throw new Error(`reply body of ${body.length} bytes does not hold one message of ${length} bytes`);
  return body.subarray(5);
}

function decodeGrpcMessage(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** Calls METHOD with REQUEST on the agent at SOCKET; rejects with ApiCallError carrying the gRPC status. */
export function callAgentOnce<T>(socketPath: string, name: string, request: object, timeoutMs: number): Promise<T> {
  const method = API_METHODS.get(name);
  if (!method) return Promise.reject(new Error(`unknown API method ${name}`));
  const body = frameMessage(method.serialize(request));
  return new Promise((resolve, reject) => {
    let settled = false;
    const session = http2.connect('http://localhost', { createConnection: () => connect(socketPath) });
    const finish = (error: ApiCallError | undefined, reply?: T): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      session.destroy();
      if (error) reject(error);
      else resolve(reply as T);
    };
    const timer = setTimeout(() => finish(new ApiCallError(GRPC_STATUS.deadlineExceeded, `the agent at ${socketPath} did not answer ${name} within ${timeoutMs} ms`, false)), timeoutMs);
    // Socket missing, connection refused, reset: the agent is not there (gRPC's UNAVAILABLE).
    session.on('error', (error) => finish(new ApiCallError(GRPC_STATUS.unavailable, `cannot reach the weft agent at ${socketPath}: ${error.message}`, false)));
    const stream = session.request({ ':method': 'POST', ':path': method.path, 'content-type': 'application/grpc', te: 'trailers' });
    const chunks: Buffer[] = [];
    let size = 0;
    let headers: http2.IncomingHttpHeaders = {};
    stream.on('response', (h) => (headers = h));
    stream.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_REPLY_BYTES) finish(new ApiCallError(GRPC_STATUS.internal, `the reply to ${name} exceeds ${MAX_REPLY_BYTES} bytes`, false));
      else chunks.push(chunk);
    });
    stream.on('error', (error) => finish(new ApiCallError(GRPC_STATUS.unavailable, `cannot reach the weft agent at ${socketPath}: ${error.message}`, false)));
    let trailers: http2.IncomingHttpHeaders = {};
    stream.on('trailers', (t) => (trailers = t));
    stream.on('end', () => {
      const code = Number(trailers['grpc-status'] ?? headers['grpc-status'] ?? NaN);
      const message = decodeGrpcMessage(String(trailers['grpc-message'] ?? headers['grpc-message'] ?? ''));
      if (Number.isNaN(code)) return finish(new ApiCallError(GRPC_STATUS.internal, `the agent's reply to ${name} has no gRPC status (HTTP ${String(headers[':status'])})`, false));
      if (code !== GRPC_STATUS.ok) return finish(new ApiCallError(code, message || `${name} failed with gRPC status ${code}`, code === GRPC_STATUS.invalidArgument));
      try {
        finish(undefined, method.deserialize(unframeMessage(Buffer.concat(chunks))) as T);
      } catch (error) {
        finish(new ApiCallError(GRPC_STATUS.internal, `cannot decode the agent's reply to ${name}: ${(error as Error).message}`, false));
      }
    });
    stream.end(body);
  });
}
