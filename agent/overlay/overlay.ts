// The overlay on this host, as the agent API sees it: networks and services
// (cluster objects), the sandboxes this host made or adopted and their
// endpoints in the per-network tables. Changes run one at a time.
// The parts live beside it (docs/overlay.md lists them): the sandbox
// lifecycle, local endpoint entries, host networks, the gateway bridge,
// endpoint health, detached processes, the programmer.
import type { Logger } from 'pino';
import type { Dataplane, EgressSpec, Finding } from '../../dataplane/index.ts';
import type { TableService } from '../cluster/table-service.ts';
import { precondition } from '../api/errors.ts';
import type { EndpointObject, NetworkObject, ServiceObject } from '../wire/objects-codec.ts';
import { Networks, type CreateNetwork } from './networks.ts';
import { LocalState, type LocalSandbox } from './local-state.ts';
import { Programmer } from './programmer.ts';
import { sievedEndpoints, type VtepOf } from './endpoints.ts';
import type { SievedEndpoints } from '../../controlplane/overlay/endpoint-sieve.ts';
import { valuesInUse } from './allocation-in-use.ts';
import { ipSpace, type Allocations } from './spaces.ts';
import type { GuardPin } from '../../dataplane/host-guard.ts';
import { Services, type CreateService } from './services.ts';
import { Serializer } from '../../lib/serial.ts';
import { EndpointHealth } from './endpoint-health.ts';
import { DetachedProcesses } from './detached.ts';
import { Gateway } from './gateway.ts';
import { HostNetworks } from './host-networks.ts';
import { ContainerLinks } from './container-links.ts';
import type { ContainerKey, SandboxInfo, SandboxRequest } from './sandbox-request.ts';
import { Publisher, type IngressPort } from './publisher.ts';
import { LocalEndpoints } from './local-endpoints.ts';
import { SandboxLifecycle } from './sandbox-lifecycle.ts';
import { DEFAULT_DSTPORT } from '../../dataplane/index.ts';

export type { SandboxInfo, SandboxRequest };

export interface OverlayOptions {
  dataplane: Dataplane;
  tables: TableService;
  allocations: Allocations;
  selfId: string;
  vtep: string;
  /** Each member's roster address: the only VTEP its endpoints may name. */
  vtepOf: VtepOf;
  pool: string;
  dataDir: string;
  logger: Logger;
  /** Anti-entropy with a host already on the network, right after joining its topic. */
  syncNetwork: (networkId: string) => void;
  /** The host's gateway bridge: resolver, health checks, and egress for non-internal networks. */
  egress: EgressSpec;
  /** The embedded resolver's port on the gateway address, once it listens. */
  dnsPort?: () => number | undefined;
  /**
   * Called after local sandboxes or their attachments changed: the service
   * plane recomputes, and the promise resolves once it has programmed them,
   * with why the sandbox `netns` could not be, if it could not.
   */
  onLocalChange?: (netns?: string) => Promise<string | undefined>;
  /**
   * Called after the gateway table was rewritten (sandboxes came or went): the
   * host guard re-pins; resolves once it has (a port is dropped until pinned).
   */
  onGatewayChange?: () => Promise<void>;
  /** The published ports the ingress routing mesh takes on this host (agent/ingress). */
  ingressPorts?: () => IngressPort[];
  /** Findings of other planes for `weft doctor` (the service plane's load-balancing tables). */
  moreFindings?: () => Promise<Finding[]>;
}

export class Overlay {
  readonly networks: Networks;
  readonly services: Services;
  /** Addresses and links for runtimes that move the interface themselves (Docker). */
  readonly containerLinks: ContainerLinks;
  readonly #o: OverlayOptions;
  readonly #log: Logger;
  readonly #local: LocalState;
  readonly #programmer: Programmer;
  readonly #hostNetworks: HostNetworks;
  readonly #gateway: Gateway;
  readonly #detached: DetachedProcesses;
  readonly #publisher: Publisher;
  readonly #health = new EndpointHealth();
  readonly #endpoints: LocalEndpoints;
  readonly #sandboxes: SandboxLifecycle;
  /** One operation that changes sandboxes at a time: attachments and IPs must not interleave. */
  readonly #exclusive = new Serializer();

  constructor(options: OverlayOptions) {
    this.#o = options;
    this.#log = options.logger.child({ component: 'overlay' });
    this.networks = new Networks(options.tables, options.allocations, options.pool, options.selfId);
    this.services = new Services(options.tables, options.allocations, options.selfId, () => this.networks.list(), (ports) => this.#publisher.ingressConflict(ports));
    this.#local = new LocalState(options.dataDir);
    this.#hostNetworks = new HostNetworks({ ...options, logger: this.#log });
    this.#publisher = new Publisher({
      plane: options.dataplane.publish(),
      subnet: options.egress.subnet,
      sandboxes: () => this.localSandboxes(),
      reserved: [{ protocol: 'udp', port: DEFAULT_DSTPORT }],
      logger: this.#log,
      ingress: () => options.ingressPorts?.() ?? [],
    });
    this.containerLinks = new ContainerLinks({ dataplane: options.dataplane, allocations: options.allocations, networks: this.networks, hostNetworks: this.#hostNetworks });
    this.#gateway = new Gateway({
      egress: options.dataplane.egress(options.egress),
      dataplane: options.dataplane,
      networks: this.networks,
      sandboxes: () => this.localSandboxes(),
      mtuOf: (networkId) => this.#hostNetworks.mtu(networkId),
      dnsPort: options.dnsPort,
      publisher: this.#publisher,
      onChange: options.onGatewayChange,
      logger: this.#log,
    });
    this.#detached = new DetachedProcesses(options.dataplane, options.dataDir, this.#log);
    this.#programmer = new Programmer({
      dataplane: options.dataplane,
      tables: options.tables,
      selfId: options.selfId,
      logger: options.logger,
      localNetworks: () => this.#localNetworks(),
      endpoints: (networkId) => this.visibleEndpoints(networkId),
    });
    const shared = { networks: this.networks, local: this.#local, hostNetworks: this.#hostNetworks, health: this.#health, logger: this.#log };
    this.#endpoints = new LocalEndpoints({ ...shared, tables: options.tables, selfId: options.selfId, vtep: options.vtep });
    this.#sandboxes = new SandboxLifecycle({
      ...shared,
      dataplane: options.dataplane,
      allocations: options.allocations,
      services: this.services,
      gateway: this.#gateway,
      publisher: this.#publisher,
      detached: this.#detached,
      endpoints: this.#endpoints,
      onLocalChange: options.onLocalChange,
    });
    options.tables.ownEntriesAdopted((entries) => this.#endpoints.settle(entries));
  }

  /** Restores this host's networks and endpoints after a restart without touching the sandboxes. */
  async start(): Promise<void> {
    await this.#gateway.sync(true);
    for (const sandbox of this.#local.sandboxes.values()) {
      for (const attachment of sandbox.attachments) {
        const network = this.networks.byId(attachment.networkId);
        if (!network) {
          this.#log.warn({ sandbox: sandbox.netns, network: attachment.networkId }, 'a local endpoint refers to a network that no longer exists');
          continue;
        }
        await this.#hostNetworks.realise(network);
        this.#o.allocations.define(ipSpace(network.id, network.subnet, network.gateway), false);
        // A backend that was failing its health check before the restart stays out until it passes.
        this.#health.startFailing(attachment.endpointId, this.#publishedUnhealthy(attachment.endpointId, network.id) ?? []);
        this.#endpoints.publish(network, sandbox, attachment);
      }
    }
    // Own entries the saved tables hold that no local sandbox backs any more (a crash between the two saves).
    this.#endpoints.settle(this.#o.tables.tables.tableNames().flatMap((t) => this.#o.tables.tables.bucketEntries(t, this.#o.selfId)), false);
    await this.#removeLeftoverShaping();
    await this.#gateway.guardOldPorts();
    for (const s of this.localSandboxes().filter((l) => l.published.length > 0)) await this.#gateway.isolate(this.#o.dataplane.sandbox(s.netns), s);
    await this.#hostNetworks.removeUnused(new Set(this.#localNetworks().map((n) => n.vni)));
    this.#programmer.start();
    this.#gateway.startRepairs();
    this.#detached.watch(() => this.localSandboxes(), (record) => this.detach(record.netns).then(() => undefined));
  }

  /** The kernel programmer's counters and last outcome (metrics, readiness). */
  get programmer(): Pick<Programmer, 'stats' | 'lastResult'> {
    return this.#programmer;
  }

  // ---- networks ----

  createNetwork(request: CreateNetwork): Promise<NetworkObject> {
    return this.#exclusive.run(() => this.networks.create(request));
  }

  removeNetwork(name: string): Promise<NetworkObject> {
    return this.#exclusive.run(async () => {
      const network = this.networks.require(name);
      const services = this.services.onNetwork(network.id).map((s) => s.name);
      if (services.length > 0) throw precondition(`network "${name}" has services (${services.join(', ')}); remove them first with \`weft service rm\``);
      return this.networks.remove(name, this.hostsOn(network.id));
    });
  }

  // ---- services ----

  createService(request: Omit<CreateService, 'network'> & { network: string }): Promise<ServiceObject> {
    return this.#exclusive.run(() => this.services.create({ ...request, network: this.networks.require(request.network) }));
  }

  removeService(name: string): Promise<ServiceObject> {
    return this.#exclusive.run(() => {
      const service = this.services.require(name);
      return this.services.remove(name, this.networks.byId(service.networkId));
    });
  }

  /** A service's health-check verdict on a local endpoint: republished so every host's DNS and load balancers follow. */
  setHealth(endpointId: string, service: string, healthy: boolean): void {
    if (this.#health.record(endpointId, service, healthy)) this.#endpoints.republishEndpoint(endpointId);
  }

  /** A service's verdict last published for a local endpoint (survives an agent restart through the tables). */
  publishedHealth(endpointId: string, networkId: string, service: string): boolean | undefined {
    const failing = this.#publishedUnhealthy(endpointId, networkId);
    return failing === undefined ? undefined : !failing.includes(service);
  }

  /** The services a local endpoint's published entry says it fails; undefined when nothing is published. */
  #publishedUnhealthy(endpointId: string, networkId: string): readonly string[] | undefined {
    return this.visibleEndpoints(networkId).find((e) => e.id === endpointId)?.unhealthyServices;
  }

  /** Node IDs of live hosts that have endpoints on the network (from the cluster-wide presence table). */
  hostsOn(networkId: string): string[] {
    return this.#hostNetworks.hostsOn(networkId);
  }

  // ---- sandboxes ----

  createSandbox(request: SandboxRequest): Promise<SandboxInfo> {
    return this.#exclusive.run(() => this.#sandboxes.create(request));
  }

  /** Detaches a sandbox from one network, or from all; a sandbox weft made is deleted with its last attachment. */
  detach(netns: string, networkName?: string): Promise<SandboxInfo> {
    return this.#exclusive.run(() => this.#sandboxes.detach(netns, networkName));
  }

  /** Detaches what a container runtime attached for (containerId, ifname); undefined when there is nothing (DEL must then succeed). */
  detachContainer(containerId: string, ifname: string): Promise<SandboxInfo | undefined> {
    return this.#exclusive.run(() => this.#sandboxes.detachContainer(containerId, ifname));
  }

  /** CNI GC on `network` for CNI network `cniNetwork` (SandboxLifecycle.collectContainers); the keys detached. */
  collectContainers(network: string, cniNetwork: string, valid: readonly ContainerKey[]): Promise<ContainerKey[]> {
    return this.#exclusive.run(() => this.#sandboxes.collectContainers(this.networks.require(network), cniNetwork, valid));
  }

  /**
   * Names a container's attachment that was published without a name (its runtime could not say
   * it in time) and publishes it again; false when there is no such attachment or it has a name.
   */
  nameContainer(containerId: string, ifname: string, name: string): Promise<boolean> {
    return this.#exclusive.run(async () => this.#sandboxes.nameContainer(containerId, ifname, name));
  }

  /** What differs in the kernel from a container's attachment (interface, address, route): CNI CHECK. */
  checkContainer(containerId: string, ifname: string): Promise<{ info: SandboxInfo; problems: string[] }> {
    return this.#sandboxes.checkContainer(containerId, ifname);
  }

  /** The programmable endpoints of a network (endpoints.ts). */
  visibleEndpoints(networkId: string): EndpointObject[] {
    return this.#sievedEndpoints(networkId).endpoints;
  }

  #sievedEndpoints(networkId: string): SievedEndpoints<EndpointObject> {
    // Without its network an endpoint has no subnet to be checked against, nor a bridge to be programmed on.
    const network = this.networks.list().find((n) => n.id === networkId);
    if (network === undefined) return { endpoints: [], refused: [] };
    const serviceVips = new Set(this.services.list().filter((s) => s.mode === 'vip' && s.networkId === networkId).map((s) => s.vip));
    return sievedEndpoints(this.#o.tables, { network, vtepOf: this.#o.vtepOf, serviceVips });
  }

  /** Endpoints in the tables that are left out, and why (`weft doctor`). */
  refusedEndpoints(): Finding[] {
    return this.networks.list().flatMap((network) =>
      this.#sievedEndpoints(network.id).refused.map((r) => ({
        subject: `endpoint ${r.id} of ${r.owner} on network ${network.name}`,
        problem: `not programmed nor resolved: ${r.problem}`,
        hint: 'a member published an endpoint address no host programs (the other endpoints are not affected); weft never allocates one, so look at the member that did (docs/security/signed-records.md)',
      })),
    );
  }

  endpoints(networkName?: string): EndpointObject[] {
    const networks = networkName === undefined ? this.networks.list() : [this.networks.require(networkName)];
    return networks.flatMap((n) => this.visibleEndpoints(n.id));
  }

  /** Values cluster objects use in an allocation space: what a reclaim of a gone node's ranges keeps reserved. */
  allocationValuesInUse(space: string, isActive: (nodeId: string) => boolean): number[] | undefined {
    return valuesInUse(space, {
      pool: this.#o.pool,
      networks: this.networks.list(),
      services: this.services.list(),
      endpoints: (networkId) => this.visibleEndpoints(networkId),
      isActive,
    });
  }

  localSandboxes(): LocalSandbox[] {
    return [...this.#local.sandboxes.values()];
  }

  async doctor(): Promise<Finding[]> {
    await this.#programmer.settled();
    const networks = this.#localNetworks();
    const attachments = this.localSandboxes().flatMap((s) =>
      // With egress the default route leaves through the egress bridge, not the first network.
      s.attachments.map((a, index) => ({ sandbox: s.netns, vni: a.vni, spec: { ip: a.ip, mac: a.mac, ifname: a.ifname, defaultRoute: index === 0 && !this.#gateway.reachesOutside(s) } })),
    );
    const findings = await this.#o.dataplane.doctor({ networks: networks.map((n) => this.#hostNetworks.spec(n)), endpoints: this.#programmer.desired(), attachments });
    return [...findings, ...this.refusedEndpoints(), ...(await this.#publisher.doctor()), ...((await this.#o.moreFindings?.()) ?? [])];
  }

  /** Waits until the kernel reflects the tables as they are now (tests, benchmarks). */
  async programmed(): Promise<void> {
    this.#programmer.repair();
    await this.#programmer.settled();
  }

  /** Rewrites the host's gateway table (which sandboxes may not leave, where DNS goes) and re-pins the host guard. */
  syncGateway(): Promise<void> {
    return this.#gateway.sync();
  }

  /** Each local sandbox's port on the gateway bridge and the only source (MAC, address) it may use there. */
  gatewayPins(): GuardPin[] {
    return this.#gateway.pins();
  }

  /** Bandwidth limits (ifb devices) of containers that went while the agent was down without their runtime's DEL reaching it. */
  async #removeLeftoverShaping(): Promise<void> {
    for (const network of this.#localNetworks()) {
      const removed = await this.#o.dataplane.removeLeftoverShaping(network.vni).catch((e: Error) => {
        this.#log.warn({ network: network.name, err: e.message }, 'cannot remove leftover bandwidth limits');
        return [];
      });
      if (removed.length > 0) this.#log.info({ network: network.name, removed }, 'removed bandwidth limits of sandboxes that are gone');
    }
  }

  #localNetworks(): NetworkObject[] {
    const ids = new Set(this.localSandboxes().flatMap((s) => s.attachments.map((a) => a.networkId)));
    return this.networks.list().filter((n) => ids.has(n.id) && this.#hostNetworks.isRealised(n.id));
  }

  stop(): void {
    this.#programmer.stop();
    this.#gateway.stop();
    this.#detached.stop();
  }
}
