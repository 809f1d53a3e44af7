// Keeps the kernel's FDB and neighbour entries equal to the live remote
// endpoints of every network this host has endpoints on. Table changes
// trigger a reconcile (coalesced: changes that arrive during one run are
// handled by the next) that diffs against what the last run left in the
// kernel instead of reading it again (dataplane/known-entries.ts): the read
// is two process spawns, the largest share of a change's way to the kernel
// on a busy host. The first run, a periodic run and the run after a failure
// read the kernel, so drift made by hand is repaired as before.
import type { Logger } from 'pino';
import type { Dataplane, NetworkEndpoints, ReconcileResult } from '../../dataplane/index.ts';
import type { TableService } from '../cluster/table-service.ts';
import { networkOfTable } from '../../controlplane/node/topics.ts';
import type { EndpointObject, NetworkObject } from '../wire/objects-codec.ts';
import { CoalescedRun } from '../util/coalesced-run.ts';
import { DurationHistogram, PROGRAMMING_BOUNDS } from '../../lib/histogram.ts';

/** What the programmer did since the agent started (read by agent/metrics). */
export interface ProgrammerStats {
  /** Runs where every network reconciled / where at least one failed. */
  runs: { ok: number; failed: number };
  /** Kernel entries changed by runs, summed. */
  entries: { added: number; removed: number; replaced: number };
  duration: DurationHistogram;
}

const PERIODIC_RECONCILE_MS = 30_000;

export class Programmer {
  readonly #dataplane: Dataplane;
  readonly #tables: TableService;
  readonly #selfId: string;
  readonly #log: Logger;
  readonly #localNetworks: () => NetworkObject[];
  readonly #runs = new CoalescedRun(() => this.#run());
  /** The next run reads the kernel (start-up, periodic repair, after a failure). */
  #readKernel = true;
  #timer: NodeJS.Timeout | undefined;
  #unsubscribe: (() => void) | undefined;
  lastResult: ReconcileResult | undefined;
  readonly stats: ProgrammerStats = { runs: { ok: 0, failed: 0 }, entries: { added: 0, removed: 0, replaced: 0 }, duration: new DurationHistogram(PROGRAMMING_BOUNDS) };

  readonly #endpoints: (networkId: string) => EndpointObject[];

  constructor(options: {
    dataplane: Dataplane;
    tables: TableService;
    selfId: string;
    logger: Logger;
    localNetworks: () => NetworkObject[];
    /** The programmable endpoints of a network (endpoints.ts). */
    endpoints: (networkId: string) => EndpointObject[];
  }) {
    this.#endpoints = options.endpoints;
    this.#dataplane = options.dataplane;
    this.#tables = options.tables;
    this.#selfId = options.selfId;
    this.#log = options.logger.child({ component: 'programmer' });
    this.#localNetworks = options.localNetworks;
  }

  start(): void {
    this.#unsubscribe = this.#tables.subscribe(() => this.trigger(), (table) => networkOfTable(table) !== undefined);
    this.#timer = setInterval(() => this.repair(), PERIODIC_RECONCILE_MS);
    this.trigger();
  }

  /** What the kernel should hold: every live endpoint of another host, per local network. */
  desired(): NetworkEndpoints[] {
    return this.#localNetworks().map((network) => ({
      vni: network.vni,
      endpoints: this.#endpoints(network.id)
        .filter((e) => e.nodeId !== this.#selfId)
        .map((e) => ({ ip: e.ip, mac: e.mac, vtep: e.vtep })),
    }));
  }

  trigger(): void {
    this.#runs.trigger();
  }

  /** A run that reads the kernel, repairing entries changed by hand. */
  repair(): void {
    this.#readKernel = true;
    this.#runs.trigger();
  }

  /** Resolves when no reconcile is running or pending. */
  settled(): Promise<void> {
    return this.#runs.settled();
  }

  async #run(): Promise<void> {
    const started = performance.now();
    const fromKnown = !this.#readKernel;
    this.#readKernel = false;
    try {
      const result = await this.#dataplane.reconcile(this.desired(), { fromKnown });
      this.lastResult = result;
      if (result.errors.length > 0) this.#readKernel = true;
      this.#count(result, started);
      if (result.added + result.removed + result.replaced > 0) {
        this.#log.info({ added: result.added, removed: result.removed, replaced: result.replaced }, 'programmed remote endpoints');
      }
      for (const error of result.errors) this.#log.error({ err: error }, 'reconcile failed for a network; will retry');
    } catch (error) {
      this.#readKernel = true;
      this.stats.runs.failed += 1;
      this.stats.duration.observe((performance.now() - started) / 1000);
      this.#log.error({ err: (error as Error).message }, 'reconcile failed; will retry');
    }
  }

  #count(result: ReconcileResult, started: number): void {
    this.stats.duration.observe((performance.now() - started) / 1000);
    this.stats.runs[result.errors.length === 0 ? 'ok' : 'failed'] += 1;
    this.stats.entries.added += result.added;
    this.stats.entries.removed += result.removed;
    this.stats.entries.replaced += result.replaced;
  }

  stop(): void {
    this.#unsubscribe?.();
    if (this.#timer) clearInterval(this.#timer);
  }
}
