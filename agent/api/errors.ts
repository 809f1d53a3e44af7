// Errors that cross the agent API carry a gRPC status so the CLI can tell a
// usage problem (exit 2) from a failure (exit 1), plus a message that says
// what to do.
import { status } from '@grpc/grpc-js';

export class AgentError extends Error {
  readonly code: status;
  constructor(code: status, message: string) {
    super(message);
    this.code = code;
  }
}

export const badRequest = (message: string): AgentError => new AgentError(status.INVALID_ARGUMENT, message);
export const precondition = (message: string): AgentError => new AgentError(status.FAILED_PRECONDITION, message);
export const notFound = (message: string): AgentError => new AgentError(status.NOT_FOUND, message);
export const NOT_IN_CLUSTER = 'this node is not in a cluster; create one with `weft init` or join one with `weft join --token TOKEN ADDR`';
