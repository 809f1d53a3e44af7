// The CLI's side of the agent API. Turns transport failures into messages a
// user can act on ("no agent on this socket: start one with ...").
// It reads agent.proto with protobufjs (methods.ts) and calls grpc-js's
// generic unary request, rather than going through @grpc/proto-loader as the
// server does: proto-loader's descriptor machinery is a third of what
// `weft members` spends before it can send a request.
import * as grpc from '@grpc/grpc-js';
import { DEFAULT_API_SOCKET } from './defaults.ts';
import { ApiCallError } from './call-error.ts';
import { API_METHODS } from './methods.ts';

const CALL_TIMEOUT_MS = 60_000;

export { ApiCallError, API_METHODS };

export class AgentClient {
  readonly socketPath: string;
  readonly #client: grpc.Client;

  constructor(socketPath: string) {
    this.socketPath = socketPath;
    this.#client = new grpc.Client(`unix://${socketPath}`, grpc.credentials.createInsecure());
  }

  static fromEnvironment(explicit: string | undefined): AgentClient {
    return new AgentClient(explicit ?? process.env['WEFT_SOCKET'] ?? DEFAULT_API_SOCKET);
  }

  call<T>(name: string, request: object = {}): Promise<T> {
    const method = API_METHODS.get(name);
    if (!method) throw new Error(`unknown API method ${name}`);
    return new Promise((resolve, reject) => {
      this.#client.makeUnaryRequest(method.path, method.serialize, method.deserialize, request, { deadline: new Date(Date.now() + CALL_TIMEOUT_MS) }, (error, reply) => {
        if (!error) return resolve(reply as T);
        if (error.code === grpc.status.UNAVAILABLE) {
          return reject(
            new ApiCallError(
              error.code,
              `no weft agent is answering on ${this.socketPath}; start one with \`weft agent\` (as root), or point the CLI at a running agent with --api-socket PATH or WEFT_SOCKET`,
              false,
            ),
          );
        }
        reject(new ApiCallError(error.code, error.details || error.message, error.code === grpc.status.INVALID_ARGUMENT));
      });
    });
  }

  close(): void {
    this.#client.close();
  }
}
