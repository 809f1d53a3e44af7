// The CLI's side of the agent API. Turns transport failures into messages a
// user can act on ("no agent on this socket: start one with ...").
import * as grpc from '@grpc/grpc-js';
import { AgentApiService } from '../wire/agent-api-service.ts';
import { DEFAULT_API_SOCKET } from './defaults.ts';
import { ApiCallError } from './call-error.ts';

const CALL_TIMEOUT_MS = 60_000;

export { ApiCallError };

type Unary = (request: object, options: grpc.CallOptions, callback: (error: grpc.ServiceError | null, reply: unknown) => void) => void;

export class AgentClient {
  readonly socketPath: string;
  readonly #client: grpc.Client;

  constructor(socketPath: string) {
    this.socketPath = socketPath;
    this.#client = new AgentApiService(`unix://${socketPath}`, grpc.credentials.createInsecure());
  }

  static fromEnvironment(explicit: string | undefined): AgentClient {
    return new AgentClient(explicit ?? process.env['WEFT_SOCKET'] ?? DEFAULT_API_SOCKET);
  }

  call<T>(method: string, request: object = {}): Promise<T> {
    const fn = (this.#client as unknown as Record<string, Unary>)[method];
    if (!fn) throw new Error(`unknown API method ${method}`);
    return new Promise((resolve, reject) => {
      fn.call(this.#client, request, { deadline: new Date(Date.now() + CALL_TIMEOUT_MS) }, (error, reply) => {
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
