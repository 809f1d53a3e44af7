// CNI errors: what the plugin prints on stdout (with a non-zero exit) when a
// command fails. The codes are the spec's well-known ones; 100 and up are ours.
export const CNI_CODE = {
  incompatibleVersion: 1,
  unsupportedField: 2,
  containerUnknown: 3,
  invalidEnv: 4,
  io: 5,
  decode: 6,
  invalidConfig: 7,
  tryLater: 11,
  /** STATUS (1.1): the plugin cannot service ADD now (agent down, not in a cluster, no such network). */
  notAvailable: 50,
  /** The agent refused or failed the request for a reason of its own (its message says which). */
  agentFailed: 100,
  /** CHECK found the container's interface, address or route not as the agent made them. */
  drift: 101,
} as const;

export class CniError extends Error {
  readonly code: number;
  readonly details: string;
  constructor(code: number, msg: string, details = '') {
    super(msg);
    this.code = code;
    this.details = details;
  }

  toJSON(cniVersion: string): object {
    return { cniVersion, code: this.code, msg: this.message, ...(this.details === '' ? {} : { details: this.details }) };
  }
}
