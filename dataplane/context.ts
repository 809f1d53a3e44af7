// What every data plane call needs: the prefix for the namespace names it makes
// and the runner that reaches the kernel.
import type { Runner } from './exec.ts';
import { processRunner } from './exec.ts';
import { validatePrefix } from './names.ts';

export interface DataplaneContext {
  /** Prefix of every namespace this data plane creates: `${nsPrefix}-n${vni}`, `${nsPrefix}-s${id}`. */
  readonly nsPrefix: string;
  readonly runner: Runner;
}

export interface DataplaneOptions {
  nsPrefix: string;
  /** Default: spawn the tools directly (the agent runs in the host's network namespace). */
  runner?: Runner;
}

export function dataplaneContext(options: DataplaneOptions): DataplaneContext {
  return { nsPrefix: validatePrefix(options.nsPrefix), runner: options.runner ?? processRunner() };
}
