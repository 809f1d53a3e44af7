// The agent API's unix socket. It speaks gRPC (HTTP/2: any gRPC client) and
// the JSON-line framing (json-line.ts: the CLI, the CNI plugin) on the same
// path, told apart by the first byte a client sends: an HTTP/2 client always
// opens with the preface "PRI * HTTP/2.0", a JSON-line client with "{".
// gRPC connections go to grpc-js through its connection injector; JSON lines
// are answered here, through agent.proto's codec so that both see one API.
import { createServer, type Socket } from 'node:net';
import type { ServiceDefinition } from '@grpc/grpc-js';
import { MAX_LINE_BYTES, STATUS, type JsonReply } from './json-line.ts';

/** Runs one API method on a request already shaped by agent.proto; rejects with an error carrying a gRPC `code`. */
export type ApiCall = (method: string, request: unknown) => Promise<object>;

/** A client that says nothing, or sends half a line, is dropped after this long (by default). */
const IDLE_TIMEOUT_MS = 30_000;
const HTTP2_PREFACE_FIRST_BYTE = 0x50; // 'P'

export interface ApiSocket {
  /** Stops listening and drops the JSON-line calls still open (grpc-js closes its own connections). */
  close(): void;
}

/** Listens on SOCKETPATH; hands HTTP/2 connections to `http2`, answers JSON lines with `json`. */
export function listenApiSocket(socketPath: string, routes: { http2: (socket: Socket) => void; json: ApiCall }, idleTimeoutMs = IDLE_TIMEOUT_MS): Promise<ApiSocket> {
  const ours = new Set<Socket>(); // connections not handed to grpc-js
  const server = createServer((socket) => {
    ours.add(socket);
    socket.once('close', () => ours.delete(socket));
    socket.setTimeout(idleTimeoutMs, () => socket.destroy());
    socket.on('error', () => socket.destroy()); // a client that goes away mid-call is its own problem
    socket.once('data', (first: Buffer) => {
      if (first[0] === HTTP2_PREFACE_FIRST_BYTE) {
        socket.pause();
        socket.setTimeout(0);
        socket.unshift(first);
        ours.delete(socket);
        routes.http2(socket);
      } else {
        serveJsonLine(socket, first, routes.json);
      }
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', (error) => reject(new Error(`cannot listen on API socket ${socketPath}: ${error.message}`)));
    server.listen(socketPath, () =>
      resolve({
        close() {
          server.close();
          for (const socket of ours) socket.destroy();
        },
      }),
    );
  });
}

function serveJsonLine(socket: Socket, first: Buffer, call: ApiCall): void {
  // A client may shut down its side once its line is sent; it still gets the answer.
  socket.allowHalfOpen = true;
  const chunks: Buffer[] = [];
  let size = 0;
  let lineIn = false;
  const answer = (reply: JsonReply): void => {
    socket.removeAllListeners('data');
    socket.end(JSON.stringify(reply) + '\n');
  };
  socket.once('end', () => {
    if (!lineIn) answer({ code: STATUS.invalidArgument, message: 'the request ended before its newline' });
  });
  const onData = (chunk: Buffer): void => {
    const newline = chunk.indexOf(0x0a);
    const part = newline === -1 ? chunk : chunk.subarray(0, newline);
    chunks.push(part);
    size += part.length;
    if (size > MAX_LINE_BYTES) {
      lineIn = true;
      return answer({ code: STATUS.resourceExhausted, message: `request larger than ${MAX_LINE_BYTES} bytes` });
    }
    if (newline === -1) return;
    lineIn = true;
    socket.removeAllListeners('data');
    socket.setTimeout(0); // the line is in: a call may take as long as the handler needs (join waits for the cluster)
    void answerLine(Buffer.concat(chunks).toString('utf8'), call).then(answer);
  };
  socket.on('data', onData);
  onData(first);
}

/** Checks the line's shape and runs the call; never rejects. */
async function answerLine(line: string, call: ApiCall): Promise<JsonReply> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch (error) {
    return { code: STATUS.invalidArgument, message: `request is not JSON: ${(error as Error).message}` };
  }
  if (typeof parsed !== 'object' || parsed === null || typeof (parsed as { method?: unknown }).method !== 'string') {
    return { code: STATUS.invalidArgument, message: 'request must be a JSON object with a string "method" and an object "request"' };
  }
  const { method, request } = parsed as { method: string; request?: unknown };
  try {
    return { code: STATUS.ok, reply: await call(method, request ?? {}) };
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    return { code: typeof code === 'number' && code > 0 ? code : STATUS.internal, message: (error as Error).message };
  }
}

/**
 * An ApiCall that takes a request as JSON, shapes it the way a gRPC request
 * is shaped (agent.proto's codec, encode then decode), runs `run`, and shapes
 * the reply the same way: a JSON-line caller and a gRPC caller see the same
 * fields, defaults and enum names.
 */
export function throughProtoCodec(service: ServiceDefinition, run: (method: string, request: unknown) => Promise<object>): ApiCall {
  return async (method, request) => {
    const definition = Object.hasOwn(service, method) ? service[method] : undefined;
    if (!definition) throw Object.assign(new Error(`unknown API method ${JSON.stringify(method)}`), { code: STATUS.unimplemented });
    let shaped: unknown;
    try {
      shaped = definition.requestDeserialize(definition.requestSerialize(request));
    } catch (error) {
      throw Object.assign(new Error(`request to ${method} does not fit agent.proto: ${(error as Error).message}`), { code: STATUS.invalidArgument });
    }
    const reply = await run(method, shaped);
    return definition.responseDeserialize(definition.responseSerialize(reply)) as object;
  };
}
