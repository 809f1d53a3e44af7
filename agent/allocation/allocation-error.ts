// Allocation failures the agent reports to its callers (API, overlay). The
// code is for programs; the message says what happened and what to do.
import type { AllocError } from '../../controlplane/allocation/index.ts';

export type AllocationErrorCode =
  | AllocError['code']
  | 'unknown-space'
  | 'space-mismatch'
  | 'gave-up'
  | 'left'
  | 'stopped'
  | 'store-failed';

export class AllocationError extends Error {
  override name = 'AllocationError';
  readonly code: AllocationErrorCode;
  /** Nodes that hold the space this node would need, when relevant. */
  readonly owners: readonly string[];

  constructor(code: AllocationErrorCode, message: string, owners: readonly string[] = []) {
    super(message);
    this.code = code;
    this.owners = owners;
  }

  /** The allocator's verdict, with a hint where its message has none. */
  static from(error: AllocError): AllocationError {
    const hint = error.code === 'in-use' ? '; choose another value, or leave it out to get a free one' : '';
    return new AllocationError(error.code, error.message + hint, error.owners ?? []);
  }
}
