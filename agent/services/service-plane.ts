// The service plane on this host: keeps every local sandbox's VIP load
// balancer, the embedded resolver's answers and the health checks of local
// backends in step with the tables. Any change to services or endpoints (a
// sandbox came or went, a host died, a check failed) recomputes the desired
// state once (changes arriving meanwhile are folded into the next run); the
// load balancer applies only what differs.
import type { Logger } from 'pino';
import type { TableService } from '../cluster/table-service.ts';
import { networkOfTable } from '../../controlplane/node/topics.ts';
import type { Overlay } from '../overlay/overlay.ts';
import type { EndpointObject } from '../wire/objects-codec.ts';
import { SERVICES_TABLE } from '../overlay/services.ts';
import { clientView, lbServices, type ServiceState } from './views.ts';
import { staleFlows, type SandboxFlows, type StaleFlow } from './stale-flows.ts';
import { HealthChecker, type HealthOptions, type HealthTarget } from './health.ts';
import type { DnsClientView } from '../../controlplane/services/dns-answers.ts';
import { LoadBalancer, type LbService, type SandboxLb } from '../../dataplane/lb/index.ts';
import { describeNetns, netnsRef } from '../../dataplane/netns.ts';
import type { Finding } from '../../dataplane/doctor.ts';
import { CoalescedRun } from '../util/coalesced-run.ts';
import { DurationHistogram, PROGRAMMING_BOUNDS } from '../../lib/histogram.ts';

const PERIODIC_MS = 30_000;
const RESYNC_EVERY_TICKS = 10;
/** After a failed load-balancer update: soon again (the failed sandboxes are rewritten whole). */
const RETRY_MS = 1_000;

export interface ServicePlaneOptions {
  overlay: Overlay;
  tables: TableService;
  logger: Logger;
  health?: Partial<Omit<HealthOptions, 'onChange'>>;
  /** Tests and benchmarks may bring their own. */
  loadBalancer?: LoadBalancer;
  /** Called after each run with a new generation: the resolver drops cached answers. */
  onViewsChanged?: () => void;
  /** The ingress routing mesh, programmed from the same live backends each run (agent/ingress). */
  ingress?: { program(state: ServiceState): Promise<SandboxFlows[]> };
}

export class ServicePlane {
  readonly #o: ServicePlaneOptions;
  readonly #log: Logger;
  readonly #lb: LoadBalancer;
  readonly #health: HealthChecker;
  /** Local sandboxes by gateway address: who is asking the resolver. */
  #clients = new Map<string, string[]>();
  #views = new Map<string, DnsClientView>();
  #state: ServiceState | undefined;
  readonly #runs = new CoalescedRun(() => this.#run());
  #timer: NodeJS.Timeout | undefined;
  #retry: NodeJS.Timeout | undefined;
  #stopped = false;
  #unsubscribe: (() => void) | undefined;
  #known = new Set<string>();
  /** What the last run asked of the load balancer: what `doctor` checks the kernel against. */
  #desired: SandboxLb[] = [];
  /** Per sandbox (netns), the services its table last took (or held when first seen): what flows were mapped by. */
  #applied = new Map<string, readonly LbService[]>();
  /** The last run's load-balancer failures, by sandbox (its netns as `weft endpoints` shows it). */
  #failed = new Map<string, string>();
  /** Load-balancer updates since start (agent/metrics): runs by outcome, sandboxes rewritten, run time. */
  readonly lbStats = { runs: { ok: 0, failed: 0 }, sandboxes: 0, duration: new DurationHistogram(PROGRAMMING_BOUNDS) };

  constructor(options: ServicePlaneOptions) {
    this.#o = options;
    this.#log = options.logger.child({ component: 'services' });
    this.#lb = options.loadBalancer ?? new LoadBalancer();
    this.#health = new HealthChecker({ ...options.health, onChange: (key, healthy) => this.#onHealth(key, healthy) });
  }

  start(): void {
    const relevant = (table: string) => table === SERVICES_TABLE || networkOfTable(table) !== undefined;
    this.#unsubscribe = this.#o.tables.subscribe(() => this.trigger(), relevant);
    let ticks = 0;
    this.#timer = setInterval(() => {
      // Now and then, rewrite every table whole: repairs a table someone changed behind our back.
      if (++ticks % RESYNC_EVERY_TICKS === 0) this.#lb.resync();
      this.trigger();
    }, PERIODIC_MS);
    this.trigger();
  }

  /** The DNS view of the sandbox with this gateway address; undefined for anyone else. */
  viewFor(clientAddress: string): DnsClientView | undefined {
    const cached = this.#views.get(clientAddress);
    if (cached) return cached;
    const networkIds = this.#clients.get(clientAddress);
    if (!networkIds || !this.#state) return undefined;
    const view = clientView(this.#state, networkIds);
    this.#views.set(clientAddress, view);
    return view;
  }

  trigger(): void {
    this.#runs.trigger();
  }

  /** Resolves when no run is in progress or pending (tests, doctor). */
  settled(): Promise<void> {
    return this.#runs.settled();
  }

  /**
   * Recomputes now and resolves once the local sandboxes as they are now are
   * programmed (load balancer, resolver views); returns why the sandbox
   * `netns` could not be, if it could not. A new sandbox waits for this before
   * its command starts, so the command sees its services from its first
   * instruction.
   */
  async refresh(netns?: string): Promise<string | undefined> {
    this.trigger();
    await this.settled();
    return netns === undefined ? undefined : this.#failed.get(netns);
  }

  /** `weft doctor`: every local sandbox's load-balancing table against what it should hold. */
  async doctor(): Promise<Finding[]> {
    await this.settled();
    const found = await this.#lb.inspect(this.#desired);
    const refused = this.#o.overlay.services.refused().map((r) => ({
      subject: `service ${r.name}`,
      problem: `not resolved nor load-balanced: ${r.problem}`,
      hint: 'a member wrote a service no host programs (the other services are not affected); weft never writes one, so look at the member that did (docs/security/signed-records.md)',
    }));
    return [...refused, ...found.flatMap(({ sandbox, problems }) => problems.map((problem) => ({
      subject: `sandbox ${sandbox} load balancing`,
      problem,
      hint: 'the agent rewrites differing tables on the next change and every 5 minutes; if it persists, look for "load balancer update failed" in the agent log',
    })))];
  }

  /** Health checks run and backends by verdict (agent/metrics). */
  healthStats(): { results: { passed: number; failed: number }; verdicts: { healthy: number; unhealthy: number } } {
    return { results: { ...this.#health.results }, verdicts: this.#health.verdicts() };
  }

  async #run(): Promise<void> {
    const started = performance.now();
    try {
      const overlay = this.#o.overlay;
      const endpoints = new Map<string, EndpointObject[]>();
      const state: ServiceState = {
        networks: overlay.networks.list(),
        services: overlay.services.list(),
        endpoints: (id) => endpoints.get(id) ?? endpoints.set(id, overlay.visibleEndpoints(id)).get(id)!,
      };
      const sandboxes = overlay.localSandboxes();
      this.#state = state;
      this.#clients = new Map(sandboxes.filter((s) => s.egressIp !== '').map((s) => [s.egressIp, s.attachments.map((a) => a.networkId)]));
      this.#views = new Map();
      this.#o.onViewsChanged?.();
      this.#updateHealthTargets(state);
      // Sandboxes on the same networks get the same array: the load balancer renders it once.
      const byNetworks = new Map<string, ReturnType<typeof lbServices>>();
      const servicesFor = (networkIds: string[]) => {
        const key = [...networkIds].sort().join(',');
        return byNetworks.get(key) ?? byNetworks.set(key, lbServices(state, networkIds)).get(key)!;
      };
      // Flows a sandbox's table had mapped to backends that are no longer live go with the change.
      const flows = new Map<readonly LbService[], Map<readonly LbService[], StaleFlow[]>>();
      const flowsFor = (before: readonly LbService[] | undefined, after: readonly LbService[]) => {
        if (before === undefined || before === after) return [];
        const byAfter = flows.get(before) ?? flows.set(before, new Map()).get(before)!;
        return byAfter.get(after) ?? byAfter.set(after, staleFlows(before, after)).get(after)!;
      };
      await this.#learnHeldTables(sandboxes.map((s) => s.netns));
      const desired: SandboxLb[] = sandboxes.map((s) => {
        const services = servicesFor(s.attachments.map((a) => a.networkId));
        return { sandbox: netnsRef(s.netns), services, dropFlows: flowsFor(this.#applied.get(s.netns), services) };
      });
      for (const gone of [...this.#known].filter((netns) => !sandboxes.some((s) => s.netns === netns))) {
        this.#lb.forget(netnsRef(gone));
        this.#known.delete(gone);
        this.#applied.delete(gone);
      }
      for (const s of sandboxes) this.#known.add(s.netns);
      this.#desired = desired;
      const result = await this.#lb.apply(desired);
      this.#countRun(result.errors.length === 0, result.applied, started);
      this.#failed = new Map(result.errors.map((e) => [e.sandbox, e.error]));
      // A failed sandbox keeps its earlier services here: its flows are still due on the retry.
      for (const { sandbox, services } of desired) if (!this.#failed.has(describeNetns(sandbox))) this.#applied.set(describeNetns(sandbox), services);
      if (result.applied > 0) this.#log.info({ sandboxes: result.applied }, 'programmed service load balancing');
      for (const error of result.errors) this.#log.error({ sandbox: error.sandbox, err: error.error }, 'load balancer update failed; will retry');
      if (result.errors.length > 0) this.#retrySoon();
      await this.#dropIngressFlows(await this.#o.ingress?.program(state) ?? []);
    } catch (error) {
      const message = (error as Error).message;
      this.#failed = new Map(this.#o.overlay.localSandboxes().map((s) => [s.netns, message]));
      this.#countRun(false, 0, started);
      this.#log.error({ err: message }, 'service plane update failed; will retry');
    }
  }

  /** UDP flows the ingress tables had mapped to backends that left them: their next packet picks a live one. */
  async #dropIngressFlows(stale: readonly SandboxFlows[]): Promise<void> {
    for (const { netns, flows } of stale) {
      await this.#lb.dropFlows(netnsRef(netns), flows)
        .catch((error: Error) => this.#log.warn({ sandbox: netns, err: error.message }, 'cannot delete the ingress flows of backends that left; they stay until the client pauses'));
    }
  }

  #countRun(ok: boolean, sandboxes: number, started: number): void {
    this.lbStats.runs[ok ? 'ok' : 'failed'] += 1;
    this.lbStats.sandboxes += sandboxes;
    this.lbStats.duration.observe((performance.now() - started) / 1000);
  }

  /**
   * A sandbox this process has not programmed yet (all of them after an agent
   * restart) may hold a table from before, with flows mapped by it: what that
   * table balances is read from the kernel, so the first run also drops flows
   * to backends that left while the agent was down (docs/load-balancing.md).
   */
  async #learnHeldTables(netnsNames: readonly string[]): Promise<void> {
    const unknown = netnsNames.filter((netns) => !this.#applied.has(netns));
    if (unknown.length === 0) return;
    try {
      for (const [netns, services] of await this.#lb.held(unknown.map((netns) => netnsRef(netns)))) this.#applied.set(netns, services);
    } catch (error) {
      this.#log.warn({ err: (error as Error).message }, 'could not read the load-balancing tables of sandboxes; flows they mapped stay');
    }
  }

  #updateHealthTargets(state: ServiceState): void {
    const checks = new Map(state.services.filter((s) => s.health.kind !== '').map((s) => [s.name, s.health]));
    const targets: HealthTarget[] = [];
    for (const sandbox of this.#o.overlay.localSandboxes()) {
      for (const attachment of sandbox.attachments) {
        for (const service of attachment.services) {
          const check = checks.get(service);
          if (check && check.kind !== '' && sandbox.egressIp !== '') targets.push({ key: `${attachment.networkId}|${attachment.endpointId}|${service}`, address: sandbox.egressIp, check });
          else this.#o.overlay.setHealth(attachment.endpointId, service, true);
        }
      }
    }
    this.#health.update(targets, (key) => {
      const [networkId, endpointId, service] = key.split('|') as [string, string, string];
      return this.#o.overlay.publishedHealth(endpointId, networkId, service);
    });
  }

  #onHealth(key: string, healthy: boolean): void {
    const [, endpointId, service] = key.split('|') as [string, string, string];
    this.#log.info({ endpoint: endpointId, service, healthy }, healthy ? 'backend passed its health check' : 'backend failed its health check');
    this.#o.overlay.setHealth(endpointId, service, healthy);
  }

  #retrySoon(): void {
    if (this.#retry || this.#stopped) return;
    this.#retry = setTimeout(() => {
      this.#retry = undefined;
      this.trigger();
    }, RETRY_MS);
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#unsubscribe?.();
    if (this.#timer) clearInterval(this.#timer);
    if (this.#retry) clearTimeout(this.#retry);
    this.#health.stop();
    await this.settled();
    await this.#lb.close();
  }
}
