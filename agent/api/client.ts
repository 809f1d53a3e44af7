// The CLI's side of the agent API: one JSON-line call per connection
// (json-line.ts) on the agent's socket. It loads node:net and nothing else:
// a gRPC client (node:http2, grpc-js, a protobuf codec) was two thirds of
// what `weft node ls` added to Node's own memory (docs/cli.md). The agent
// shapes requests and replies with agent.proto, so the objects are the ones
// a gRPC client gets. Transport failures become messages a user can act on.
import type { Socket } from 'node:net';
import { DEFAULT_API_SOCKET } from './defaults.ts';
import { ApiCallError } from './call-error.ts';
import { MAX_LINE_BYTES, STATUS, type JsonReply } from './json-line.ts';
// (a builtin taken with process.getBuiltinModule, not `import`: docs/cli.md, "Startup")
const { connect } = process.getBuiltinModule('node:net');

const CALL_TIMEOUT_MS = 60_000;

export { ApiCallError };

export class AgentClient {
  readonly socketPath: string;
  readonly #open = new Set<Socket>();

  constructor(socketPath: string) {
    this.socketPath = socketPath;
  }

  static fromEnvironment(explicit: string | undefined): AgentClient {
    return new AgentClient(explicit ?? process.env['WEFT_SOCKET'] ?? DEFAULT_API_SOCKET);
  }

  call<T>(name: string, request: object = {}): Promise<T> {
    return new Promise((resolve, reject) => {
      const socket = connect(this.socketPath);
      this.#open.add(socket);
      let settled = false;
      const finish = (error: ApiCallError | undefined, reply?: unknown): void => {
        if (settled) return;
        settled = true;
        socket.destroy();
        this.#open.delete(socket);
        if (error) reject(error);
        else resolve(reply as T);
      };
      const chunks: Buffer[] = [];
      let size = 0;
      socket.setTimeout(CALL_TIMEOUT_MS, () => finish(new ApiCallError(STATUS.deadlineExceeded, `the agent at ${this.socketPath} did not answer ${name} within ${CALL_TIMEOUT_MS / 1000} s`, false)));
      socket.on('error', (error: NodeJS.ErrnoException) => finish(this.#unreachable(error)));
      socket.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_LINE_BYTES) return finish(new ApiCallError(STATUS.internal, `the reply to ${name} exceeds ${MAX_LINE_BYTES} bytes`, false));
        chunks.push(chunk);
        if (chunk.includes(0x0a)) finish(...this.#outcome(name, Buffer.concat(chunks)));
      });
      socket.on('end', () => finish(new ApiCallError(STATUS.unavailable, `the agent at ${this.socketPath} closed the connection without answering ${name}: it stopped (see its log), or it is older than this CLI (\`weft --version\`) and speaks only gRPC (restart it from the same install)`, false)));
      socket.write(JSON.stringify({ method: name, request }) + '\n');
    });
  }

  /** Drops any call still open. */
  close(): void {
    for (const socket of this.#open) socket.destroy();
    this.#open.clear();
  }

  #unreachable(error: NodeJS.ErrnoException): ApiCallError {
    if (error.code === 'EACCES') {
      return new ApiCallError(STATUS.unavailable, `no permission to use the agent's socket ${this.socketPath}: run the CLI as root (the socket is root's, mode 0660)`, false);
    }
    return new ApiCallError(
      STATUS.unavailable,
      `no weft agent is answering on ${this.socketPath}; start one with \`weft agent\` (as root), or point the CLI at a running agent with --api-socket PATH or WEFT_SOCKET`,
      false,
    );
  }

  #outcome(name: string, body: Buffer): [ApiCallError | undefined, unknown?] {
    let reply: JsonReply;
    try {
      reply = JSON.parse(body.subarray(0, body.indexOf(0x0a)).toString('utf8')) as JsonReply;
    } catch (error) {
      return [new ApiCallError(STATUS.internal, `cannot read the agent's reply to ${name}: ${(error as Error).message}`, false)];
    }
    if (reply.code === STATUS.ok && 'reply' in reply) return [undefined, reply.reply];
    const message = 'message' in reply && typeof reply.message === 'string' ? reply.message : `${name} failed with status ${reply.code}`;
    return [new ApiCallError(reply.code, message, reply.code === STATUS.invalidArgument)];
  }
}
