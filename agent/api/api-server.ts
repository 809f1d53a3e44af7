// The agent API on a unix socket (0660, root): gRPC and the CLI's JSON-line
// framing on one path (api-socket.ts), both served by the same handlers.
// Refuses to start when another agent already answers on the socket; removes
// a stale socket left by a crash.
import * as grpc from '@grpc/grpc-js';
import { chmodSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Logger } from 'pino';
import { AgentApiService } from '../wire/agent-api-service.ts';
import { AgentError } from './errors.ts';
import { initRequest, joinRequest, removeNodeRequest, tokenRequest } from './schemas.ts';
import { overlayHandlers, parse } from './overlay-handlers.ts';
import { cniHandlers } from './cni-handler.ts';
import { listenApiSocket, throughProtoCodec } from './api-socket.ts';
import type { Agent } from '../daemon/agent.ts';
import { WEFT_VERSION } from '../version.ts';
import { claimSocketPath } from '../../lib/unix-socket.ts';

type Handler = (request: unknown) => Promise<object> | object;

export interface ApiServer {
  /** Stops listening and drops open calls. */
  close(): void;
}

export async function startApiServer(agent: Agent, socketPath: string, logger: Logger): Promise<ApiServer> {
  await refuseIfSocketLive(socketPath);
  const log = logger.child({ component: 'api' });
  const handlers: Record<string, Handler> = {
    Status: () => status(agent),
    Init: async (req) => ({ token: await agent.init(parse(initRequest, req).defaultAddrPool) }),
    Join: async (req) => {
      const { token, address } = parse(joinRequest, req);
      return agent.join(token, address.host, address.port ?? 2377);
    },
    Leave: async () => {
      await agent.leave();
      return {};
    },
    Token: (req) => ({ token: agent.token(parse(tokenRequest, req).rotate) }),
    Members: () => ({ members: agent.members().map(memberReply) }),
    RemoveNode: async (req) => agent.removeNode(parse(removeNodeRequest, req).node),
    ...overlayHandlers(() => agent.overlay(), (nodeId) => agent.cluster?.roster.get(nodeId)?.name ?? ''),
    // A CNI run calls the handlers above as a socket client would: shaped by agent.proto both ways.
    ...cniHandlers((method, request) => viaApi(method, request), (error) => log.error({ method: 'CniExec', err: error.stack }, 'CNI run failed inside the agent')),
  };
  /** Runs a handler; any failure becomes an AgentError with a status, unexpected ones logged as INTERNAL. */
  const run = async (name: string, request: unknown): Promise<object> => {
    const handler = Object.hasOwn(handlers, name) ? handlers[name] : undefined;
    if (!handler) throw new AgentError(grpc.status.UNIMPLEMENTED, `unknown API method ${name}`);
    try {
      return await handler(request);
    } catch (error) {
      if (error instanceof AgentError) throw error;
      log.error({ method: name, err: (error as Error).stack }, 'API call failed');
      throw new AgentError(grpc.status.INTERNAL, (error as Error).message);
    }
  };
  const viaApi = throughProtoCodec(AgentApiService.service, run);
  const server = new grpc.Server();
  const implementation: grpc.UntypedServiceImplementation = {};
  for (const name of Object.keys(handlers)) {
    implementation[name] = (call: grpc.ServerUnaryCall<unknown, object>, callback: grpc.sendUnaryData<object>) => {
      run(name, call.request).then(
        (reply) => callback(null, reply),
        (error: AgentError) => callback({ code: error.code, details: error.message }),
      );
    };
  }
  server.addService(AgentApiService.service, implementation);
  const grpcConnections = server.createConnectionInjector(grpc.ServerCredentials.createInsecure());
  mkdirSync(dirname(socketPath), { recursive: true, mode: 0o755 });
  const listener = await listenApiSocket(socketPath, {
    http2: (socket) => grpcConnections.injectConnection(socket),
    json: viaApi,
  });
  chmodSync(socketPath, 0o660);
  return {
    close() {
      listener.close();
      grpcConnections.destroy();
      server.forceShutdown();
    },
  };
}

function status(agent: Agent): object {
  const cluster = agent.cluster;
  return {
    nodeId: cluster?.nodeId ?? '',
    name: agent.config.name,
    peerId: agent.peerId,
    advertiseAddr: agent.advertiseAddr,
    inCluster: cluster !== undefined,
    clusterId: cluster?.clusterId ?? '',
    members: cluster?.members().filter((m) => m.record.status === 'active').length ?? 0,
    connectedPeers: cluster?.connectedPeers() ?? 0,
    version: WEFT_VERSION,
    dataDir: agent.config.dataDir,
    listenAddr: agent.config.listenAddr,
    gossipPort: agent.config.gossipPort,
  };
}

function memberReply(view: ReturnType<Agent['members']>[number]): object {
  const r = view.record;
  return {
    nodeId: r.nodeId,
    name: r.name,
    peerId: r.peerId,
    address: r.address,
    state: view.state,
    incarnation: view.incarnation,
    self: view.self,
    connected: view.self || view.connected,
  };
}

export function refuseIfSocketLive(socketPath: string): Promise<void> {
  return claimSocketPath(socketPath, () => new Error(`another weft agent is already listening on ${socketPath}; stop it first or start this one with a different --api-socket`));
}
