// A failed agent API call, as the CLI reports it. Apart from the gRPC client
// so that the CLI's error handling does not load gRPC for commands that never
// call the agent.
export class ApiCallError extends Error {
  override name = 'ApiCallError';
  /** gRPC status code of the failure. */
  readonly code: number;
  /** The agent refused the request as invalid: the user must change it (exit 2). */
  readonly badRequest: boolean;
  constructor(code: number, message: string, badRequest: boolean) {
    super(message);
    this.code = code;
    this.badRequest = badRequest;
  }
}
