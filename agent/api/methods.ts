// The agent API's methods as protobufjs reads them from proto/agent.proto:
// the message shapes for a gRPC caller that does without grpc-js (the CNI
// plugin's HTTP/2 call, http2-call.ts). Messages decode with the server's
// options (MESSAGE_OPTIONS), so both ends see the same objects.
import protobuf from 'protobufjs';
import { fileURLToPath } from 'node:url';
import { MESSAGE_OPTIONS } from '../wire/message-options.ts';

const AGENT_PROTO = fileURLToPath(new URL('../../proto/agent.proto', import.meta.url));
export const AGENT_SERVICE = 'weft.agent.AgentApi';

export interface Method {
  path: string;
  serialize: (request: object) => Buffer;
  deserialize: (bytes: Buffer) => unknown;
}

function loadMethods(): Map<string, Method> {
  const root = new protobuf.Root().loadSync(AGENT_PROTO, { keepCase: false });
  root.resolveAll();
  const service = root.lookupService(AGENT_SERVICE);
  return new Map(
    service.methodsArray.map((method) => {
      const requestType = method.resolvedRequestType!;
      const responseType = method.resolvedResponseType!;
      return [method.name, {
        path: `/${AGENT_SERVICE}/${method.name}`,
        serialize: (request: object) => Buffer.from(requestType.encode(requestType.fromObject(request)).finish()),
        deserialize: (bytes: Buffer) => responseType.toObject(responseType.decode(bytes), MESSAGE_OPTIONS),
      }];
    }),
  );
}

/** Every method of the service, by name. */
export const API_METHODS: ReadonlyMap<string, Method> = loadMethods();
