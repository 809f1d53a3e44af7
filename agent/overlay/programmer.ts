// Keeps the kernel's FDB and neighbour entries equal to the live remote
// endpoints of every network this host has endpoints on. Table changes
// trigger a reconcile (coalesced: changes that arrive during one run are
// handled by the next); a periodic run repairs drift made by hand.
import type { Logger } from 'pino';
import type { Dataplane, NetworkEndpoints, ReconcileResult } from '../../dataplane/index.ts';
import type { TableService } from '../cluster/table-service.ts';
import { networkOfTable } from '../cluster/table-topics.ts';
import type { EndpointObject, NetworkObject } from '../wire/objects-codec.ts';
import { CoalescedRun } from '../util/coalesced-run.ts';

const PERIODIC_RECONCILE_MS = 30_000;

export class Programmer {
  readonly #dataplane: Dataplane;
  readonly #tables: TableService;
  readonly #selfId: string;
  readonly #log: Logger;
  readonly #localNetworks: () => NetworkObject[];
  readonly #runs = new CoalescedRun(() => this.#run());
  #timer: NodeJS.Timeout | undefined;
  #unsubscribe: (() => void) | undefined;
  lastResult: ReconcileResult | undefined;

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
    this.#timer = setInterval(() => this.trigger(), PERIODIC_RECONCILE_MS);
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

  /** Resolves when no reconcile is running or pending. */
  settled(): Promise<void> {
    return this.#runs.settled();
  }

  async #run(): Promise<void> {
    try {
      const result = await this.#dataplane.reconcile(this.desired());
      this.lastResult = result;
      if (result.added + result.removed + result.replaced > 0) {
        this.#log.info({ added: result.added, removed: result.removed, replaced: result.replaced }, 'programmed remote endpoints');
      }
      for (const error of result.errors) this.#log.error({ err: error }, 'reconcile failed for a network; will retry');
    } catch (error) {
      this.#log.error({ err: (error as Error).message }, 'reconcile failed; will retry');
    }
  }

  stop(): void {
    this.#unsubscribe?.();
    if (this.#timer) clearInterval(this.#timer);
  }
}
