// The ingress routing mesh on this host (`weft service create --publish`,
// docs/publishing.md): every host accepts on a service's published port and
// balances new connections over the service's live backends on any host.
// As in Swarm, each host has an ingress sandbox on each network with a
// published service: an ordinary local sandbox (endpoint, gateway leg) whose
// namespace name says which network it serves. The host's publish table DNATs
// the published port to that sandbox's gateway address (agent/overlay/
// publisher.ts); the sandbox's ingress table (dataplane/ingress.ts) DNATs to a
// live backend through the overlay and masquerades, so the answer returns the
// same way. The backends are the set the VIP load balancer uses, computed
// once per service-plane run (agent/services/views.ts), which calls
// `program`. Sandboxes come and go in a run of their own (`reconcile`),
// because creating one waits for a service-plane run. A `mode=host`
// publication needs no ingress sandbox: the host's DNAT goes straight to a
// live local backend, and only while there is one.
import type { Logger } from 'pino';
import type { Dataplane, Finding } from '../../dataplane/index.ts';
import type { IngressEntry } from '../../dataplane/ingress.ts';
import { sandboxNamespaceName } from '../../dataplane/names.ts';
import { liveBackends } from '../../controlplane/services/backends.ts';
import type { TableService } from '../cluster/table-service.ts';
import type { Overlay } from '../overlay/overlay.ts';
import type { LocalSandbox } from '../overlay/local-state.ts';
import type { IngressPort } from '../overlay/publisher.ts';
import { SERVICES_TABLE } from '../overlay/services.ts';
import { NETWORKS_TABLE } from '../overlay/networks.ts';
import type { ServiceState } from '../services/views.ts';
import type { SandboxFlows } from '../services/stale-flows.ts';
import { staleIngressFlows } from './stale-ingress-flows.ts';
import type { ServiceObject } from '../wire/objects-codec.ts';
import { CoalescedRun } from '../util/coalesced-run.ts';

/** Now and then, look again (a failed sandbox creation is retried, a table repaired). */
const PERIODIC_MS = 30_000;

export interface IngressMeshOptions {
  overlay: Overlay;
  dataplane: Dataplane;
  tables: TableService;
  logger: Logger;
  /** The service plane recomputes (and so programs the ingress tables through `program`). */
  onChange: () => void;
}

export class IngressMesh {
  readonly #o: IngressMeshOptions;
  readonly #log: Logger;
  readonly #runs = new CoalescedRun(() => this.#reconcile());
  /** Per ingress sandbox, what its table was last given (`doctor` compares the kernel with it). */
  #desired = new Map<string, IngressEntry[]>();
  /** Per ingress sandbox, the text last written: an unchanged table is not rewritten. */
  #written = new Map<string, string>();
  /** Networks whose ingress sandbox could not be made, and why (`doctor`). */
  #failed = new Map<string, string>();
  #lastPorts = '';
  #timer: NodeJS.Timeout | undefined;
  #unsubscribe: (() => void) | undefined;

  constructor(options: IngressMeshOptions) {
    this.#o = options;
    this.#log = options.logger.child({ component: 'ingress' });
  }

  start(): void {
    this.#unsubscribe = this.#o.tables.subscribe(() => this.#runs.trigger(), (table) => table === SERVICES_TABLE || table === NETWORKS_TABLE);
    this.#timer = setInterval(() => this.#runs.trigger(), PERIODIC_MS);
    this.#runs.trigger();
  }

  /** Resolves once the sandboxes match the services as they are now (tests, doctor). */
  async settled(): Promise<void> {
    this.#runs.trigger();
    await this.#runs.settled();
  }

  /**
   * The published ports this host takes and where the host's DNAT sends them:
   * ingress mode to the network's ingress sandbox (same port), host mode to a
   * live local backend (the target port), only while this host runs one.
   */
  ports(): IngressPort[] {
    const sandboxes = this.#ingressSandboxes();
    const local = this.#o.overlay.localSandboxes();
    return this.#o.overlay.services.list().flatMap((service) => service.publish.flatMap((p) => {
      const ingress = sandboxes.get(service.networkId);
      const target = p.mode === 'host' ? this.#localBackend(service, local) : ingress?.egressIp || undefined;
      if (target === undefined) return [];
      return [{ service: service.name, published: p.published, protocol: p.protocol, targetIp: target, targetPort: p.mode === 'host' ? p.target : p.published }];
    }));
  }

  /** mode=host: the gateway address of the first live backend (the VIP's set) that runs here; several cannot share the port. */
  #localBackend(service: ServiceObject, local: readonly LocalSandbox[]): string | undefined {
    for (const backend of liveBackends(service, this.#o.overlay.visibleEndpoints(service.networkId))) {
      const sandbox = local.find((s) => s.egressIp !== '' && s.attachments.some((a) => a.endpointId === backend.id));
      if (sandbox) return sandbox.egressIp;
    }
    return undefined;
  }

  /**
   * Writes each ingress sandbox's table from the live backends of this service-plane run;
   * returns the UDP flows those tables had mapped to backends that are no longer in them.
   */
  async program(state: ServiceState): Promise<SandboxFlows[]> {
    const desired = new Map<string, IngressEntry[]>();
    const addresses = new Map<string, string>();
    for (const [networkId, sandbox] of this.#ingressSandboxes()) {
      addresses.set(sandbox.netns, sandbox.egressIp);
      const endpoints = state.endpoints(networkId);
      desired.set(sandbox.netns, state.services.filter((s) => s.networkId === networkId && s.mode === 'vip').flatMap((service) => {
        const backends = liveBackends(service, endpoints).map((e) => e.ip);
        return service.publish.filter((p) => p.mode === 'ingress').map((p) => ({ published: p.published, protocol: p.protocol, target: p.target, backends }));
      }));
    }
    this.#desired = desired;
    // mode=host ports follow the local backends: a change rewrites the host's publish table.
    if (JSON.stringify(this.ports()) !== this.#lastPorts) this.#runs.trigger();
    for (const netns of [...this.#written.keys()].filter((n) => !desired.has(n))) this.#written.delete(netns);
    const stale: SandboxFlows[] = [];
    for (const [netns, entries] of desired) {
      const text = JSON.stringify(entries);
      const before = this.#written.get(netns);
      if (before === text) continue;
      try {
        await this.#o.dataplane.ingress().apply(netns, entries);
        this.#written.set(netns, text);
        const address = addresses.get(netns) ?? '';
        const flows = before === undefined || address === '' ? [] : staleIngressFlows(address, JSON.parse(before) as IngressEntry[], entries);
        if (flows.length > 0) stale.push({ netns, flows });
        this.#log.info({ sandbox: netns, ports: entries.map((e) => `${e.published}/${e.protocol}`), backends: entries.map((e) => e.backends.length) }, 'programmed the ingress routing mesh');
      } catch (error) {
        this.#written.delete(netns);
        this.#log.error({ sandbox: netns, err: (error as Error).message }, 'cannot program the ingress routing mesh; will retry');
      }
    }
    return stale;
  }

  async doctor(): Promise<Finding[]> {
    await this.settled();
    const findings: Finding[] = [...this.#failed].map(([networkId, problem]) => ({
      subject: `ingress on network ${this.#o.overlay.networks.byId(networkId)?.name ?? networkId}`,
      problem: `no ingress sandbox: ${problem}`,
      hint: 'the published ports of its services do not answer on this host; the agent retries every 30 s (look for "ingress" in the agent log)',
    }));
    for (const [netns, entries] of this.#desired) {
      try {
        for (const problem of await this.#o.dataplane.ingress().inspect(netns, entries)) findings.push({ subject: 'ingress routing mesh', problem, hint: 'the agent rewrites the table on the next service change and every 30 s' });
      } catch (error) {
        findings.push({ subject: 'ingress routing mesh', problem: (error as Error).message, hint: 'check that nft works in the ingress sandbox' });
      }
    }
    return findings;
  }

  stop(): void {
    this.#unsubscribe?.();
    if (this.#timer) clearInterval(this.#timer);
  }

  /** The namespace name of this host's ingress sandbox on a network. */
  #netnsFor(networkId: string): string {
    return sandboxNamespaceName(this.#o.dataplane.context.nsPrefix, `i${networkId}`);
  }

  /** Local ingress sandboxes by network. */
  #ingressSandboxes(): Map<string, LocalSandbox> {
    const found = new Map<string, LocalSandbox>();
    for (const sandbox of this.#o.overlay.localSandboxes()) {
      const networkId = sandbox.attachments[0]?.networkId;
      if (networkId !== undefined && sandbox.attachments.length === 1 && sandbox.netns === this.#netnsFor(networkId)) found.set(networkId, sandbox);
    }
    return found;
  }

  /** Networks that need an ingress sandbox here: a known, non-internal network with a published service. */
  #wanted(): Set<string> {
    const networks = new Map(this.#o.overlay.networks.list().map((n) => [n.id, n]));
    return new Set(this.#o.overlay.services.list().filter((s) => s.publish.some((p) => p.mode === 'ingress') && networks.get(s.networkId)?.internal === false).map((s) => s.networkId));
  }

  async #reconcile(): Promise<void> {
    const wanted = this.#wanted();
    const have = this.#ingressSandboxes();
    let changed = false;
    for (const [networkId, sandbox] of have) {
      if (wanted.has(networkId)) continue;
      changed = true;
      await this.#o.overlay.detach(sandbox.netns).then(
        () => this.#log.info({ sandbox: sandbox.netns }, 'removed an ingress sandbox: its network publishes nothing any more'),
        (error: Error) => this.#log.error({ sandbox: sandbox.netns, err: error.message }, 'cannot remove an ingress sandbox; will retry'),
      );
    }
    for (const networkId of [...this.#failed.keys()]) if (!wanted.has(networkId)) this.#failed.delete(networkId);
    for (const networkId of wanted) {
      if (have.has(networkId)) continue;
      changed = true;
      await this.#create(networkId);
    }
    const ports = JSON.stringify(this.ports());
    if (changed || ports !== this.#lastPorts) {
      this.#lastPorts = ports;
      await this.#o.overlay.syncGateway();
    }
    this.#o.onChange();
  }

  async #create(networkId: string): Promise<void> {
    const network = this.#o.overlay.networks.byId(networkId);
    if (!network) return;
    const netns = this.#netnsFor(networkId);
    try {
      await this.#o.dataplane.createSandbox(`i${networkId}`);
      await this.#o.overlay.createSandbox({ networks: [network.name], name: '', aliases: [], netns });
      this.#failed.delete(networkId);
      this.#log.info({ sandbox: netns, network: network.name }, 'made the ingress sandbox of a network with published services');
    } catch (error) {
      const message = (error as Error).message;
      this.#failed.set(networkId, message);
      this.#log.error({ sandbox: netns, network: network.name, err: message }, 'cannot make the ingress sandbox; will retry');
      // Made here, not adopted: nothing else holds it.
      if (!this.#o.overlay.localSandboxes().some((s) => s.netns === netns)) {
        await this.#o.dataplane.destroySandbox(this.#o.dataplane.sandbox(netns), []).catch(() => undefined);
      }
    }
  }
}
