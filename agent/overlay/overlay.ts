// The overlay on this host, as the agent API sees it: networks and services
// (cluster objects), the sandboxes this host made or adopted and their
// endpoints in the per-network tables. Sandbox changes run one at a time.
// The parts live beside it (docs/overlay.md lists them): host networks, the
// gateway bridge, endpoint health, detached processes, the programmer.
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { status } from '@grpc/grpc-js';
import type { Dataplane, EgressSpec, Finding, Sandbox } from '../../dataplane/index.ts';
import { macFromIp } from '../../dataplane/index.ts';
import { formatIPv4, parseIPv4 } from '../../lib/ipv4.ts';
import { OBJECT_NAME, OBJECT_NAME_RULE } from '../../lib/names.ts';
import type { TableService } from '../cluster/table-service.ts';
import { endpointsTable } from '../../controlplane/node/topics.ts';
import { AgentError, badRequest, notFound, precondition } from '../api/errors.ts';
import { encodeEndpoint, type EndpointObject, type NetworkObject, type ServiceObject } from '../wire/objects-codec.ts';
import { Networks, type CreateNetwork } from './networks.ts';
import { LocalState, type LocalAttachment, type LocalSandbox } from './local-state.ts';
import { Programmer } from './programmer.ts';
import { sievedEndpoints, type VtepOf } from './endpoints.ts';
import type { SievedEndpoints } from '../../controlplane/overlay/endpoint-sieve.ts';
import { valuesInUse } from './allocation-in-use.ts';
import { ipSpace, type Allocations } from './spaces.ts';
import type { GuardPin } from '../../dataplane/host-guard.ts';
import type { PortPublication } from '../../lib/publish-spec.ts';
import { Services, type CreateService } from './services.ts';
import { Serializer } from '../../lib/serial.ts';
import { EndpointHealth } from './endpoint-health.ts';
import { DetachedProcesses } from './detached.ts';
import { Gateway } from './gateway.ts';
import { HostNetworks } from './host-networks.ts';
import { ContainerLinks } from './container-links.ts';
import { checkSandboxRequest, servicesToBack, type SandboxInfo, type SandboxRequest } from './sandbox-request.ts';
import { settleOwnEndpoints } from './own-endpoints.ts';
import type { Entry } from '../../controlplane/tables/index.ts';
import { Publisher, type IngressPort } from './publisher.ts';
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
    options.tables.ownEntriesAdopted((entries) => this.#settleOwnEndpoints(entries));
  }

  /** Restores this host's networks and endpoints after a restart without touching the sandboxes. */
  async start(): Promise<void> {
    await this.#gateway.sync();
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
        this.#publishEndpoint(network, sandbox, attachment);
      }
    }
    // Own entries the saved tables hold that no local sandbox backs any more (a crash between the two saves).
    this.#settleOwnEndpoints(this.#o.tables.tables.tableNames().flatMap((t) => this.#o.tables.tables.bucketEntries(t, this.#o.selfId)), false);
    await this.#gateway.guardOldPorts();
    for (const s of this.localSandboxes().filter((l) => l.published.length > 0)) await this.#gateway.isolate(this.#o.dataplane.sandbox(s.netns), s);
    await this.#hostNetworks.removeUnused(new Set(this.#localNetworks().map((n) => n.vni)));
    this.#programmer.start();
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
    if (!this.#health.record(endpointId, service, healthy)) return;
    for (const sandbox of this.#local.sandboxes.values()) {
      const attachment = sandbox.attachments.find((a) => a.endpointId === endpointId);
      const network = attachment && this.networks.byId(attachment.networkId);
      if (attachment && network) this.#publishEndpoint(network, sandbox, attachment);
    }
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
    return this.#exclusive.run(async () => {
      checkSandboxRequest(request);
      const networks = request.networks.map((n) => this.networks.require(n));
      if (new Set(networks.map((n) => n.id)).size !== networks.length) throw badRequest('each --network may be given once');
      const services = servicesToBack(request.services ?? [], networks, this.services, (id) => this.networks.byId(id)?.name ?? id);
      if (request.containerId !== undefined) {
        const existing = this.#local.byContainer(request.containerId, request.ifname ?? '');
        // A runtime retries ADD: the same key gets the same attachment, not a second address.
        if (existing) return this.#sameContainer(existing.sandbox, existing.attachment, request, networks[0]!);
      }
      const adopted = request.netns !== undefined ? this.#local.byNetns(request.netns) : undefined;
      const published = await this.#claimPorts(request, networks, adopted);
      const id = adopted?.id ?? randomBytes(4).toString('hex');
      const sandbox = adopted ? this.#o.dataplane.sandbox(adopted.netns) : await this.#openSandbox(id, request.netns);
      const record: LocalSandbox = adopted ?? { id, netns: this.#netnsOf(sandbox), owned: sandbox.owned, pid: 0, egressIp: '', attachments: [], published: [] };
      // Before the endpoints are published: each entry names the sandbox's ports (`weft endpoints`).
      record.published.push(...published);
      try {
        for (const network of networks) {
          if (record.attachments.some((a) => a.networkId === network.id)) throw precondition(`the sandbox is already attached to network "${network.name}"`);
          const serviceNames = services.filter((s) => s.networkId === network.id).map((s) => s.name);
          record.attachments.push(await this.#attach(sandbox, network, record, request, serviceNames));
          this.#local.sandboxes.set(record.id, record);
          this.#local.save();
        }
        await this.#gateway.plug(sandbox, record);
        if (published.length > 0) await this.#gateway.isolate(sandbox, record);
        if (adopted && published.length > 0) this.#republish(record); // its older endpoints name the new ports too
      } catch (error) {
        record.published = record.published.filter((p) => !published.includes(p));
        await this.#rollback(sandbox, record, networks.map((n) => n.id));
        throw error;
      }
      // Everything the workload sees is in place before it starts (weft run --detach here, the
      // CLI's foreground run once this returns): resolv.conf (`ip netns exec` mounts it only if it
      // exists when the command starts), the gateway table, the load-balancing table and the
      // resolver's view of this sandbox.
      this.#gateway.writeResolvConf(sandbox, record);
      await this.#gateway.sync();
      const unprogrammed = await this.#o.onLocalChange?.(record.netns);
      if (unprogrammed !== undefined) {
        await this.#rollback(sandbox, record, networks.map((n) => n.id));
        await this.#gateway.sync();
        void this.#o.onLocalChange?.();
        throw new AgentError(status.INTERNAL, `cannot program the sandbox's service load balancing: ${unprogrammed}`);
      }
      if (request.command) {
        record.pid = this.#detached.start(record, request.command);
        this.#local.save();
      }
      return this.#info(record);
    });
  }

  /** Detaches a sandbox from one network, or from all; a sandbox weft made is deleted with its last attachment. */
  detach(netns: string, networkName?: string): Promise<SandboxInfo> {
    return this.#exclusive.run(async () => {
      const record = this.#local.byNetns(netns);
      if (!record) throw notFound(`no sandbox "${netns}" on this host; list endpoints with \`weft endpoints\``);
      const networkIds = networkName === undefined ? record.attachments.map((a) => a.networkId) : [this.networks.require(networkName).id];
      if (networkName !== undefined && !record.attachments.some((a) => a.networkId === networkIds[0])) {
        throw precondition(`sandbox "${netns}" is not attached to network "${networkName}"`);
      }
      const info = this.#info(record);
      await this.#rollback(this.#o.dataplane.sandbox(record.netns), record, networkIds);
      await this.#gateway.sync();
      void this.#o.onLocalChange?.();
      return info;
    });
  }

  /** Detaches what a container runtime attached for (containerId, ifname); undefined when there is nothing (DEL must then succeed). */
  detachContainer(containerId: string, ifname: string): Promise<SandboxInfo | undefined> {
    return this.#exclusive.run(async () => {
      const found = this.#local.byContainer(containerId, ifname);
      if (!found) return undefined;
      const info = this.#info(found.sandbox);
      // The namespace may be gone already (the runtime deleted it first): the host-side veth,
      // the address and the entries are weft's and are released all the same.
      await this.#rollback(this.#o.dataplane.sandbox(found.sandbox.netns), found.sandbox, [found.attachment.networkId]);
      await this.#gateway.sync();
      void this.#o.onLocalChange?.();
      return info;
    });
  }

  /**
   * Names a container's attachment that was published without a name (its runtime could not say
   * it in time) and publishes it again; false when there is no such attachment or it has a name.
   */
  nameContainer(containerId: string, ifname: string, name: string): Promise<boolean> {
    return this.#exclusive.run(async () => {
      if (!OBJECT_NAME.test(name)) throw badRequest(`container name "${name}" is not a weft name (${OBJECT_NAME_RULE})`);
      const found = this.#local.byContainer(containerId, ifname);
      const network = found && this.networks.byId(found.attachment.networkId);
      if (!found || !network || found.attachment.name !== '') return false;
      found.attachment.name = name;
      this.#local.save();
      this.#publishEndpoint(network, found.sandbox, found.attachment);
      return true;
    });
  }

  /** What differs in the kernel from a container's attachment (interface, address, route): CNI CHECK. */
  async checkContainer(containerId: string, ifname: string): Promise<{ info: SandboxInfo; problems: string[] }> {
    const found = this.#local.byContainer(containerId, ifname);
    if (!found) throw notFound(`no attachment for container ${containerId} interface ${ifname} on this host`);
    const { sandbox, attachment } = found;
    const network = this.networks.byId(attachment.networkId);
    if (!network) return { info: this.#info(sandbox), problems: [`network ${attachment.networkId} no longer exists`] };
    const index = sandbox.attachments.indexOf(attachment);
    const findings = await this.#o.dataplane.doctor({
      networks: [this.#hostNetworks.spec(network)],
      attachments: [{ sandbox: sandbox.netns, vni: attachment.vni, spec: { ip: attachment.ip, mac: attachment.mac, ifname: attachment.ifname, defaultRoute: index === 0 && !this.#gateway.reachesOutside(sandbox) } }],
    });
    // Only the attachment's own findings: the network's are `weft doctor`'s business.
    const problems = findings.filter((f) => f.subject.startsWith('sandbox ')).map((f) => `${f.subject}: ${f.problem}`);
    return { info: this.#info(sandbox), problems };
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
    this.#programmer.trigger();
    await this.#programmer.settled();
  }

  // ---- internals ----

  async #openSandbox(id: string, netns: string | undefined): Promise<Sandbox> {
    try {
      return netns === undefined ? (await this.#o.dataplane.createSandbox(id)).sandbox : await this.#o.dataplane.adoptSandbox(netns);
    } catch (error) {
      throw precondition(`cannot ${netns === undefined ? 'create a sandbox' : `adopt namespace "${netns}"`}: ${(error as Error).message}`);
    }
  }

  #netnsOf(sandbox: Sandbox): string {
    return sandbox.key.replace(/^(name|path):/, '');
  }

  /** A repeated container request: the same answer if it asks for the same thing, else a clear refusal. */
  #sameContainer(record: LocalSandbox, attachment: LocalAttachment, request: SandboxRequest, network: NetworkObject): SandboxInfo {
    const what = `container ${request.containerId} interface ${attachment.ifname}`;
    if (attachment.networkId !== network.id) throw precondition(`${what} is already attached to network "${this.networks.byId(attachment.networkId)?.name ?? attachment.networkId}"`);
    const netns = this.#netnsOf(this.#o.dataplane.sandbox(request.netns ?? ''));
    if (netns !== record.netns) throw precondition(`${what} is already attached in namespace ${record.netns}, not ${netns}`);
    return this.#info(record);
  }

  /** Host ports for the request (publisher.ts), checked before anything is made: a refusal leaves nothing behind. */
  #claimPorts(request: SandboxRequest, networks: NetworkObject[], adopted: LocalSandbox | undefined): Promise<PortPublication[]> {
    const wanted = request.publish ?? [];
    if (wanted.length > 0 && networks.every((n) => n.internal) && !(adopted && this.#gateway.reachesOutside(adopted))) {
      throw badRequest('published ports need a network that is not --internal: answers to outside clients leave through the host\'s gateway bridge, which internal networks do not use');
    }
    return this.#publisher.claim(wanted);
  }

  async #attach(sandbox: Sandbox, network: NetworkObject, record: LocalSandbox, request: SandboxRequest, services: string[]): Promise<LocalAttachment> {
    const realised = await this.#hostNetworks.realise(network);
    const space = ipSpace(network.id, network.subnet, network.gateway);
    this.#o.allocations.define(space, false);
    let ipValue: number;
    try {
      // An address the runtime's IPAM already holds stays the runtime's to free (addressHeld).
      ipValue = request.address !== undefined ? parseIPv4(request.address) : await this.#o.allocations.allocate(space.name);
    } catch (error) {
      throw new AgentError(status.RESOURCE_EXHAUSTED, `no address for the sandbox on network "${network.name}": ${(error as Error).message}`);
    }
    const ip = formatIPv4(ipValue);
    try {
      const spec = { ip, defaultRoute: record.attachments.length === 0 };
      const attached = await this.#o.dataplane.attach(sandbox, realised, request.ifname === undefined ? spec : { ...spec, ifname: request.ifname });
      const attachment: LocalAttachment = {
        networkId: network.id,
        vni: network.vni,
        endpointId: randomBytes(6).toString('hex'),
        ip,
        mac: attached.mac,
        ifname: attached.ifname,
        name: request.name,
        aliases: request.aliases,
        services,
        containerId: request.containerId ?? '',
        addressHeld: request.address !== undefined,
      };
      // A backend of a checked service gets traffic only once a check has passed.
      const checked = services.filter((name) => this.services.byName(name)?.health.kind !== '');
      this.#health.startFailing(attachment.endpointId, checked);
      this.#publishEndpoint(network, record, attachment);
      return attachment;
    } catch (error) {
      if (request.address === undefined) await this.#o.allocations.free(space.name, ipValue).catch(() => undefined);
      throw new AgentError(status.INTERNAL, `cannot attach the sandbox to network "${network.name}": ${(error as Error).message}`);
    }
  }

  #publishEndpoint(network: NetworkObject, sandbox: LocalSandbox, attachment: LocalAttachment): void {
    const endpoint = this.#endpointOf(sandbox, attachment);
    this.#hostNetworks.announce(network.id);
    this.#o.tables.set(endpointsTable(network.id), endpoint.id, encodeEndpoint(endpoint));
    // Its time is where propagation starts (bench/lab-convergence.ts reads it).
    this.#log.info({ network: network.id, endpoint: endpoint.id, ip: endpoint.ip }, 'endpoint published');
  }

  #republish(record: LocalSandbox): void {
    for (const attachment of record.attachments) {
      const network = this.networks.byId(attachment.networkId);
      if (network) this.#publishEndpoint(network, record, attachment);
    }
  }

  /** Own endpoint entries that a peer handed back or the saved tables held: the local sandboxes decide (own-endpoints.ts). */
  #settleOwnEndpoints(entries: Entry[], republishLocal = true): void {
    const { stale, republish } = settleOwnEndpoints(entries, (networkId, endpointId) => this.#localAttachment(networkId, endpointId) !== undefined);
    for (const { table, key } of stale) this.#o.tables.delete(table, key);
    for (const { networkId, endpointId } of republishLocal ? republish : []) {
      const found = this.#localAttachment(networkId, endpointId);
      const network = this.networks.byId(networkId);
      if (found && network) this.#publishEndpoint(network, found.sandbox, found.attachment);
    }
    if (stale.length > 0) this.#log.info({ endpoints: stale.map((s) => s.key) }, 'deleted own endpoint entries that no local sandbox backs');
  }

  #localAttachment(networkId: string, endpointId: string): { sandbox: LocalSandbox; attachment: LocalAttachment } | undefined {
    for (const sandbox of this.#local.sandboxes.values()) {
      const attachment = sandbox.attachments.find((a) => a.networkId === networkId && a.endpointId === endpointId);
      if (attachment) return { sandbox, attachment };
    }
    return undefined;
  }

  /** A local attachment as the cluster sees it in the endpoint tables. */
  #endpointOf(sandbox: LocalSandbox, attachment: LocalAttachment): EndpointObject {
    return {
      id: attachment.endpointId,
      networkId: attachment.networkId,
      name: attachment.name,
      ip: attachment.ip,
      mac: attachment.mac || macFromIp(attachment.ip),
      nodeId: this.#o.selfId,
      vtep: this.#o.vtep,
      sandbox: sandbox.netns,
      aliases: attachment.aliases,
      services: attachment.services,
      unhealthyServices: this.#health.failing(attachment.endpointId),
      published: Publisher.describe(sandbox),
    };
  }

  /** Undoes attachments (endpoint entries, IPs, interfaces) and forgets the sandbox when nothing is left. */
  async #rollback(sandbox: Sandbox, record: LocalSandbox, networkIds: string[]): Promise<void> {
    for (const attachment of record.attachments.filter((a) => networkIds.includes(a.networkId))) {
      this.#o.tables.delete(endpointsTable(attachment.networkId), attachment.endpointId);
      this.#health.forget(attachment.endpointId);
      await this.#o.dataplane.detach(sandbox, attachment.vni).catch((e: Error) => this.#log.warn({ err: e.message }, 'detach failed'));
      const network = this.networks.byId(attachment.networkId);
      if (network && !attachment.addressHeld) await this.#o.allocations.free(ipSpace(network.id, network.subnet, network.gateway).name, parseIPv4(attachment.ip)).catch(() => undefined);
    }
    record.attachments = record.attachments.filter((a) => !networkIds.includes(a.networkId));
    if (record.published.length > 0 && record.attachments.length > 0 && !this.#gateway.reachesOutside(record)) {
      // Left on internal networks only, the sandbox has no route back to a client: its ports go.
      this.#log.info({ sandbox: record.netns, ports: Publisher.describe(record) }, 'unpublished the ports of a sandbox left on internal networks only');
      record.published = [];
      this.#republish(record);
      await this.#gateway.isolate(sandbox, record);
    }
    await this.#gateway.afterDetach(sandbox, record);
    if (record.attachments.length === 0) {
      if (record.owned) await this.#o.dataplane.destroySandbox(sandbox, []).catch((e: Error) => this.#log.warn({ err: e.message }, 'destroy failed'));
      this.#local.sandboxes.delete(record.id);
    }
    this.#local.save();
    for (const id of networkIds) {
      if (this.#local.attachmentsOn(id).length === 0) await this.#hostNetworks.leave(id);
    }
  }

  /** Rewrites the host's gateway table (which sandboxes may not leave, where DNS goes) and re-pins the host guard. */
  syncGateway(): Promise<void> {
    return this.#gateway.sync();
  }

  /** Each local sandbox's port on the gateway bridge and the only source (MAC, address) it may use there. */
  gatewayPins(): GuardPin[] {
    return this.#gateway.pins();
  }

  #localNetworks(): NetworkObject[] {
    const ids = new Set(this.localSandboxes().flatMap((s) => s.attachments.map((a) => a.networkId)));
    return this.networks.list().filter((n) => ids.has(n.id) && this.#hostNetworks.isRealised(n.id));
  }

  #info(record: LocalSandbox): SandboxInfo {
    const endpoints = record.attachments.map((a) => this.#endpointOf(record, a));
    const interfaces = record.attachments.map((a) => {
      const network = this.networks.byId(a.networkId);
      return { network: network?.name ?? '', ifname: a.ifname, mac: a.mac || macFromIp(a.ip), ip: a.ip, prefixLength: network ? Number(network.subnet.split('/')[1]) : 0, gateway: network?.gateway ?? '' };
    });
    const nameserver = record.egressIp === '' ? '' : this.#gateway.nameserver();
    // As the data plane sets it: through the gateway bridge when a network may leave the host, else the first network's gateway.
    const defaultGateway = this.#gateway.reachesOutside(record) ? nameserver : (interfaces[0]?.gateway ?? '');
    return { id: record.id, netns: record.netns, pid: record.pid, endpoints, interfaces, nameserver, defaultGateway };
  }

  stop(): void {
    this.#programmer.stop();
    this.#detached.stop();
  }
}

