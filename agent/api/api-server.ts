// The agent API on a unix socket (0660, root). Refuses to start when another
// agent already answers on the socket; removes a stale socket left by a crash.
import * as grpc from '@grpc/grpc-js';
import { chmodSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Logger } from 'pino';
import { AgentApiService } from '../wire/agent-api-service.ts';
import { AgentError } from './errors.ts';
import { initRequest, joinRequest, removeNodeRequest, tokenRequest } from './schemas.ts';
import { overlayHandlers, parse } from './overlay-handlers.ts';
import type { Agent } from '../daemon/agent.ts';
import { WEFT_VERSION } from '../version.ts';
import { claimSocketPath } from '../../lib/unix-socket.ts';

type Handler = (request: unknown) => Promise<object> | object;

export async function startApiServer(agent: Agent, socketPath: string, logger: Logger): Promise<grpc.Server> {
  await refuseIfSocketLive(socketPath);
  const log = logger.child({ component: 'api' });
  const server = new grpc.Server();
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
  };
  const implementation: grpc.UntypedServiceImplementation = {};
  for (const [name, handler] of Object.entries(handlers)) {
    implementation[name] = (call: grpc.ServerUnaryCall<unknown, object>, callback: grpc.sendUnaryData<object>) => {
      Promise.resolve()
        .then(() => handler(call.request))
        .then((reply) => callback(null, reply))
        .catch((error: Error) => {
          const code = error instanceof AgentError ? error.code : grpc.status.INTERNAL;
          if (code === grpc.status.INTERNAL) log.error({ method: name, err: error.stack }, 'API call failed');
          callback({ code, details: error.message });
        });
    };
  }
  server.addService(AgentApiService.service, implementation);
  mkdirSync(dirname(socketPath), { recursive: true, mode: 0o755 });
  await new Promise<void>((resolve, reject) =>
    server.bindAsync(`unix://${socketPath}`, grpc.ServerCredentials.createInsecure(), (error) =>
      error ? reject(new Error(`cannot listen on API socket ${socketPath}: ${error.message}`)) : resolve(),
    ),
  );
  chmodSync(socketPath, 0o660);
  return server;
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
