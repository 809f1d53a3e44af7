// What every data plane call needs: the prefix for the namespace names it makes
// and the runner that reaches the kernel.
import type { Runner } from './exec.ts';
import { processRunner } from './exec.ts';
import { validatePrefix } from './names.ts';

export interface DataplaneContext {
  /** Prefix of every namespace this data plane creates: `${nsPrefix}-n${vni}`, `${nsPrefix}-s${id}`. */
  readonly nsPrefix: string;
  readonly runner: Runner;
  /**
   * Applies an nft script in the runner's own namespace without a process of
   * its own (the agent's nft worker): the host guard's pins change with every
   * container start and stop, and an `nft` process costs more than the change.
   * Absent: `nft -f -` through the runner.
   */
  readonly nftScript?: ((script: string) => Promise<void>) | undefined;
}

export interface DataplaneOptions {
  nsPrefix: string;
  /** Default: spawn the tools directly (the agent runs in the host's network namespace). */
  runner?: Runner;
  nftScript?: ((script: string) => Promise<void>) | undefined;
}

export function dataplaneContext(options: DataplaneOptions): DataplaneContext {
  return { nsPrefix: validatePrefix(options.nsPrefix), runner: options.runner ?? processRunner(), nftScript: options.nftScript };
}
