// The agent API (CLI ↔ agent over the unix socket), kept on its own so the
// CLI loads nothing but this one .proto.
import { loadGrpcService } from './grpc-service.ts';

export const AgentApiService = loadGrpcService('agent.proto', ['weft', 'agent', 'AgentApi']);
