// The CLI's side of the agent API. Turns transport failures into messages a
// user can act on ("no agent on this socket: start one with ...").
// It reads agent.proto with protobufjs and calls grpc-js's generic unary
// request, rather than going through @grpc/proto-loader as the server does:
// proto-loader's descriptor machinery is a third of what `weft members`
// spends before it can send a request. Messages decode with the server's
// options (MESSAGE_OPTIONS), so both ends see the same objects.
import * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import { fileURLToPath } from 'node:url';
import { MESSAGE_OPTIONS } from '../wire/message-options.ts';
import { DEFAULT_API_SOCKET } from './defaults.ts';
import { ApiCallError } from './call-error.ts';

const CALL_TIMEOUT_MS = 60_000;
const AGENT_PROTO = fileURLToPath(new URL('../../proto/agent.proto', import.meta.url));
const SERVICE = 'weft.agent.AgentApi';

export { ApiCallError };

export interface Method {
  path: string;
  serialize: (request: object) => Buffer;
  deserialize: (bytes: Buffer) => unknown;
}

function loadMethods(): Map<string, Method> {
  const root = new protobuf.Root().loadSync(AGENT_PROTO, { keepCase: false });
  root.resolveAll();
  const service = root.lookupService(SERVICE);
  return new Map(
    service.methodsArray.map((method) => {
      const requestType = method.resolvedRequestType!;
      const responseType = method.resolvedResponseType!;
      return [method.name, {
        path: `/${SERVICE}/${method.name}`,
        serialize: (request: object) => Buffer.from(requestType.encode(requestType.fromObject(request)).finish()),
        deserialize: (bytes: Buffer) => responseType.toObject(responseType.decode(bytes), MESSAGE_OPTIONS),
      }];
    }),
  );
}

/** Every method of the service, by name (exported for the codec test). */
export const API_METHODS: ReadonlyMap<string, Method> = loadMethods();

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
