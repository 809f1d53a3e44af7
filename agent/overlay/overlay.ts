// The overlay on this host: networks (cluster objects), the sandboxes this
// host made or adopted, their endpoints in the per-network tables, and the
// data plane kept in step. The agent API calls the methods below.
import { randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import { openSync, closeSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { status } from '@grpc/grpc-js';
import type { Dataplane, Finding, Network, NetworkSpec, Sandbox } from '../../dataplane/index.ts';
import { macFromIp } from '../../dataplane/index.ts';
import { formatIPv4, parseCidr, parseIPv4 } from '../../lib/ipv4.ts';
import type { TableService } from '../cluster/table-service.ts';
import { endpointsTable } from '../cluster/table-topics.ts';
import { AgentError, badRequest, notFound, precondition } from '../api/errors.ts';
import { encodeEndpoint, NAME_PATTERN, type EndpointObject, type NetworkObject, type ServiceObject } from '../wire/objects-codec.ts';
import { Networks, type CreateNetwork } from './networks.ts';
import { LocalState, type LocalAttachment, type LocalSandbox } from './local-state.ts';
import { Programmer } from './programmer.ts';
import { visibleEndpoints } from './endpoints.ts';
import { valuesInUse } from './allocation-in-use.ts';
import { ipSpace, type Allocations } from './spaces.ts';
import { attachEgress, detachEgress, egressGateway, egressMacFor, egressVethFor, ensureEgress, setEgressRoute, unguardedEgressPorts, type EgressSpec } from '../../dataplane/egress.ts';
import type { GuardPin } from '../../dataplane/host-guard.ts';
import { Services, type CreateService } from '../services/services.ts';
import { isProcessAlive } from '../daemon/process-alive.ts';
import { Serializer } from '../../lib/serial.ts';

const NETWORK_HOSTS = 'network-hosts';
const WATCH_INTERVAL_MS = 2_000;

export interface OverlayOptions {
  dataplane: Dataplane;
  tables: TableService;
  allocations: Allocations;
  selfId: string;
  vtep: string;
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
  /** Findings of other planes for `weft doctor` (the service plane's load-balancing tables). */
  moreFindings?: () => Promise<Finding[]>;
}

export interface SandboxRequest {
  networks: string[];
  name: string;
  aliases: string[];
  /** Adopt this existing namespace (name or path) instead of creating one. */
  netns?: string | undefined;
  /** Run this command in the sandbox, watched by the agent (weft run --detach). */
  command?: string[] | undefined;
  /** Services the sandbox backs; each must be on one of `networks`. */
  services?: string[] | undefined;
}

export interface SandboxInfo {
  id: string;
  netns: string;
  pid: number;
  endpoints: EndpointObject[];
}

export class Overlay {
  readonly networks: Networks;
  readonly services: Services;
  readonly #o: OverlayOptions;
  readonly #log: Logger;
  readonly #local: LocalState;
  readonly #programmer: Programmer;
  /** Networks set up in the kernel on this host, by network ID. */
  readonly #realised = new Map<string, Network>();
  #watchTimer: NodeJS.Timeout | undefined;
  /** Per local endpoint ID, the services whose health check it fails (or has not passed yet). */
  readonly #unhealthy = new Map<string, Set<string>>();
  readonly #serial = new Serializer();

  constructor(options: OverlayOptions) {
    this.#o = options;
    this.#log = options.logger.child({ component: 'overlay' });
    this.networks = new Networks(options.tables, options.allocations, options.pool, options.selfId);
    this.services = new Services(options.tables, options.allocations, options.selfId);
    this.#local = new LocalState(options.dataDir);
    this.#programmer = new Programmer({
      dataplane: options.dataplane,
      tables: options.tables,
      selfId: options.selfId,
      logger: options.logger,
      localNetworks: () => this.#localNetworks(),
    });
  }

  /** Restores this host's networks and endpoints after a restart without touching the sandboxes. */
  async start(): Promise<void> {
    await this.syncGateway();
    for (const sandbox of this.#local.sandboxes.values()) {
      for (const attachment of sandbox.attachments) {
        const network = this.networks.byId(attachment.networkId);
        if (!network) {
          this.#log.warn({ sandbox: sandbox.netns, network: attachment.networkId }, 'a local endpoint refers to a network that no longer exists');
          continue;
        }
        await this.#realise(network);
        this.#o.allocations.define(ipSpace(network.id, network.subnet, network.gateway), false);
        // A backend that was failing its health check before the restart stays out until it passes.
        const failing = this.#publishedUnhealthy(attachment.endpointId, network.id) ?? [];
        if (failing.length > 0) this.#unhealthy.set(attachment.endpointId, new Set(failing));
        this.#publishEndpoint(network, sandbox, attachment);
      }
    }
    await this.#guardOldEgressPorts();
    await this.#removeUnusedNetworks();
    this.#programmer.start();
    this.#watchTimer = setInterval(() => void this.#reapExitedProcesses(), WATCH_INTERVAL_MS);
  }

  /** One operation that changes sandboxes at a time: attachments and IPs must not interleave. */
  #exclusive<T>(operation: () => Promise<T>): Promise<T> {
    return this.#serial.run(operation);
  }

  // ---- networks ----

  createNetwork(request: CreateNetwork): Promise<NetworkObject> {
    return this.#exclusive(() => this.networks.create(request));
  }

  removeNetwork(name: string): Promise<NetworkObject> {
    return this.#exclusive(async () => {
      const network = this.networks.require(name);
      const services = this.services.onNetwork(network.id).map((s) => s.name);
      if (services.length > 0) throw precondition(`network "${name}" has services (${services.join(', ')}); remove them first with \`weft service rm\``);
      return this.networks.remove(name, this.hostsOn(network.id));
    });
  }

  // ---- services ----

  createService(request: Omit<CreateService, 'network'> & { network: string }): Promise<ServiceObject> {
    return this.#exclusive(() => this.services.create({ ...request, network: this.networks.require(request.network) }));
  }

  removeService(name: string): Promise<ServiceObject> {
    return this.#exclusive(() => {
      const service = this.services.require(name);
      return this.services.remove(name, this.networks.byId(service.networkId));
    });
  }

  /** A service's health-check verdict on a local endpoint: republished so every host's DNS and load balancers follow. */
  setHealth(endpointId: string, service: string, healthy: boolean): void {
    const failing = this.#unhealthy.get(endpointId) ?? new Set<string>();
    if (healthy === !failing.has(service)) return;
    if (healthy) failing.delete(service);
    else failing.add(service);
    if (failing.size > 0) this.#unhealthy.set(endpointId, failing);
    else this.#unhealthy.delete(endpointId);
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
    return visibleEndpoints(this.#o.tables, networkId).find((e) => e.id === endpointId)?.unhealthyServices;
  }

  #unhealthyOf(endpointId: string): string[] {
    return [...(this.#unhealthy.get(endpointId) ?? [])].sort();
  }

  /** Node IDs of live hosts that have endpoints on the network (from the cluster-wide presence table). */
  hostsOn(networkId: string): string[] {
    return this.#o.tables.tables
      .list(NETWORK_HOSTS)
      .filter((e) => e.key.startsWith(networkId + '|'))
      .map((e) => e.owner);
  }

  // ---- sandboxes ----

  createSandbox(request: SandboxRequest): Promise<SandboxInfo> {
    return this.#exclusive(async () => {
      this.#checkNames(request);
      const networks = request.networks.map((n) => this.networks.require(n));
      if (new Set(networks.map((n) => n.id)).size !== networks.length) throw badRequest('each --network may be given once');
      const services = this.#checkServices(request.services ?? [], networks);
      const adopted = request.netns !== undefined ? this.#local.byNetns(request.netns) : undefined;
      const id = adopted?.id ?? randomBytes(4).toString('hex');
      const sandbox = adopted ? this.#o.dataplane.sandbox(adopted.netns) : await this.#openSandbox(id, request.netns);
      const record: LocalSandbox = adopted ?? { id, netns: this.#netnsOf(sandbox), owned: sandbox.owned, pid: 0, egressIp: '', attachments: [] };
      try {
        for (const network of networks) {
          if (record.attachments.some((a) => a.networkId === network.id)) throw precondition(`the sandbox is already attached to network "${network.name}"`);
          const serviceNames = services.filter((s) => s.networkId === network.id).map((s) => s.name);
          record.attachments.push(await this.#attach(sandbox, network, record, request, serviceNames));
          this.#local.sandboxes.set(record.id, record);
          this.#local.save();
        }
        await this.#ensureGatewayLink(sandbox, record);
      } catch (error) {
        await this.#rollback(sandbox, record, networks.map((n) => n.id));
        throw error;
      }
      // Everything the workload sees is in place before it starts (weft run --detach here, the
      // CLI's foreground run once this returns): resolv.conf (`ip netns exec` mounts it only if it
      // exists when the command starts), the gateway table, the load-balancing table and the
      // resolver's view of this sandbox.
      this.#writeResolvConf(sandbox, record);
      await this.syncGateway();
      const unprogrammed = await this.#o.onLocalChange?.(record.netns);
      if (unprogrammed !== undefined) {
        await this.#rollback(sandbox, record, networks.map((n) => n.id));
        await this.syncGateway();
        void this.#o.onLocalChange?.();
        throw new AgentError(status.INTERNAL, `cannot program the sandbox's service load balancing: ${unprogrammed}`);
      }
      if (request.command) {
        record.pid = this.#startDetached(record, request.command);
        this.#local.save();
      }
      return this.#info(record);
    });
  }

  /** Detaches a sandbox from one network, or from all; a sandbox weft made is deleted with its last attachment. */
  detach(netns: string, networkName?: string): Promise<SandboxInfo> {
    return this.#exclusive(async () => {
      const record = this.#local.byNetns(netns);
      if (!record) throw notFound(`no sandbox "${netns}" on this host; list endpoints with \`weft endpoints\``);
      const networkIds = networkName === undefined ? record.attachments.map((a) => a.networkId) : [this.networks.require(networkName).id];
      if (networkName !== undefined && !record.attachments.some((a) => a.networkId === networkIds[0])) {
        throw precondition(`sandbox "${netns}" is not attached to network "${networkName}"`);
      }
      const info = this.#info(record);
      await this.#rollback(this.#o.dataplane.sandbox(record.netns), record, networkIds);
      await this.syncGateway();
      void this.#o.onLocalChange?.();
      return info;
    });
  }

  endpoints(networkName?: string): EndpointObject[] {
    const networks = networkName === undefined ? this.networks.list() : [this.networks.require(networkName)];
    return networks.flatMap((n) => visibleEndpoints(this.#o.tables, n.id));
  }

  /** Values cluster objects use in an allocation space: what a reclaim of a gone node's ranges keeps reserved. */
  allocationValuesInUse(space: string, isActive: (nodeId: string) => boolean): number[] | undefined {
    return valuesInUse(space, {
      pool: this.#o.pool,
      networks: this.networks.list(),
      services: this.services.list(),
      endpoints: (networkId) => visibleEndpoints(this.#o.tables, networkId),
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
      s.attachments.map((a, index) => ({ sandbox: s.netns, vni: a.vni, spec: { ip: a.ip, mac: a.mac, ifname: a.ifname, defaultRoute: index === 0 && !this.#reachesOutside(s) } })),
    );
    const findings = await this.#o.dataplane.doctor({ networks: networks.map((n) => this.#spec(n)), endpoints: this.#programmer.desired(), attachments });
    return [...findings, ...((await this.#o.moreFindings?.()) ?? [])];
  }

  /** Waits until the kernel reflects the tables as they are now (tests, benchmarks). */
  async programmed(): Promise<void> {
    this.#programmer.trigger();
    await this.#programmer.settled();
  }

  // ---- internals ----

  #checkNames(request: SandboxRequest): void {
    for (const name of [request.name, ...request.aliases].filter((n) => n !== '')) {
      if (!NAME_PATTERN.test(name)) throw badRequest(`name "${name}" must be 1-63 letters, digits, "_", ".", "-", starting with a letter or digit`);
    }
    if (request.networks.length === 0) throw badRequest('give at least one --network');
  }

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

  #checkServices(names: string[], networks: NetworkObject[]): ServiceObject[] {
    return [...new Set(names)].map((name) => {
      const service = this.services.require(name);
      const network = this.networks.byId(service.networkId);
      if (!networks.some((n) => n.id === service.networkId)) {
        throw badRequest(`service "${name}" is on network "${network?.name ?? service.networkId}"; attach the sandbox to it (--network ${network?.name ?? service.networkId})`);
      }
      return service;
    });
  }

  async #attach(sandbox: Sandbox, network: NetworkObject, record: LocalSandbox, request: SandboxRequest, services: string[]): Promise<LocalAttachment> {
    const realised = await this.#realise(network);
    const space = ipSpace(network.id, network.subnet, network.gateway);
    this.#o.allocations.define(space, false);
    let ipValue: number;
    try {
      ipValue = await this.#o.allocations.allocate(space.name);
    } catch (error) {
      throw new AgentError(status.RESOURCE_EXHAUSTED, `no address for the sandbox on network "${network.name}": ${(error as Error).message}`);
    }
    const ip = formatIPv4(ipValue);
    try {
      const attached = await this.#o.dataplane.attach(sandbox, realised, { ip, defaultRoute: record.attachments.length === 0 });
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
      };
      // A backend of a checked service gets traffic only once a check has passed.
      const checked = services.filter((name) => this.services.byName(name)?.health.kind !== '');
      if (checked.length > 0) this.#unhealthy.set(attachment.endpointId, new Set(checked));
      this.#publishEndpoint(network, record, attachment);
      return attachment;
    } catch (error) {
      await this.#o.allocations.free(space.name, ipValue).catch(() => undefined);
      throw new AgentError(status.INTERNAL, `cannot attach the sandbox to network "${network.name}": ${(error as Error).message}`);
    }
  }

  #publishEndpoint(network: NetworkObject, sandbox: LocalSandbox, attachment: LocalAttachment): void {
    const endpoint: EndpointObject = {
      id: attachment.endpointId,
      networkId: network.id,
      name: attachment.name,
      ip: attachment.ip,
      mac: attachment.mac || macFromIp(attachment.ip),
      nodeId: this.#o.selfId,
      vtep: this.#o.vtep,
      sandbox: sandbox.netns,
      aliases: attachment.aliases,
      services: attachment.services,
      unhealthyServices: this.#unhealthyOf(attachment.endpointId),
    };
    const joining = !this.#o.tables.networks().includes(network.id);
    this.#o.tables.joinNetwork(network.id);
    this.#o.tables.set(endpointsTable(network.id), endpoint.id, encodeEndpoint(endpoint));
    this.#o.tables.set(NETWORK_HOSTS, `${network.id}|${this.#o.selfId}`, new Uint8Array());
    if (joining) this.#o.syncNetwork(network.id);
  }

  /** Undoes attachments (endpoint entries, IPs, interfaces) and forgets the sandbox when nothing is left. */
  async #rollback(sandbox: Sandbox, record: LocalSandbox, networkIds: string[]): Promise<void> {
    for (const attachment of record.attachments.filter((a) => networkIds.includes(a.networkId))) {
      this.#o.tables.delete(endpointsTable(attachment.networkId), attachment.endpointId);
      this.#unhealthy.delete(attachment.endpointId);
      await this.#o.dataplane.detach(sandbox, attachment.vni).catch((e: Error) => this.#log.warn({ err: e.message }, 'detach failed'));
      const network = this.networks.byId(attachment.networkId);
      if (network) await this.#o.allocations.free(ipSpace(network.id, network.subnet, network.gateway).name, parseIPv4(attachment.ip)).catch(() => undefined);
    }
    record.attachments = record.attachments.filter((a) => !networkIds.includes(a.networkId));
    if (record.egressIp !== '' && record.attachments.length === 0) {
      await detachEgress(this.#o.dataplane.context, sandbox).catch((e: Error) => this.#log.warn({ err: e.message }, 'gateway link detach failed'));
      record.egressIp = '';
    } else if (record.egressIp !== '') {
      await setEgressRoute(this.#o.dataplane.context, sandbox, this.#o.egress, this.#reachesOutside(record)).catch((e: Error) => this.#log.warn({ err: e.message }, 'default route update failed'));
    }
    if (record.attachments.length === 0) {
      if (record.owned) await this.#o.dataplane.destroySandbox(sandbox, []).catch((e: Error) => this.#log.warn({ err: e.message }, 'destroy failed'));
      this.#local.sandboxes.delete(record.id);
    }
    this.#local.save();
    for (const id of networkIds) {
      if (this.#local.attachmentsOn(id).length === 0) await this.#leaveNetwork(id);
    }
  }

  /**
   * Every sandbox gets a leg on the host's gateway bridge (resolver, health
   * checks); a sandbox with a non-internal network also its default route there.
   */
  async #ensureGatewayLink(sandbox: Sandbox, record: LocalSandbox): Promise<void> {
    const context = this.#o.dataplane.context;
    const outside = this.#reachesOutside(record);
    try {
      if (record.egressIp === '') {
        const ip = this.#freeEgressIp();
        const first = record.attachments[0];
        const mtu = ((first && this.#realised.get(first.networkId)?.mtu) ?? 1450) + 50;
        await attachEgress(context, sandbox, this.#o.egress, ip, mtu, outside);
        record.egressIp = ip;
      } else {
        await setEgressRoute(context, sandbox, this.#o.egress, outside);
      }
    } catch (error) {
      throw new AgentError(status.INTERNAL, `cannot plug the sandbox into the gateway bridge: ${(error as Error).message}`);
    }
  }

  #reachesOutside(record: LocalSandbox): boolean {
    return record.attachments.some((a) => this.networks.byId(a.networkId)?.internal === false);
  }

  /**
   * The host's gateway table: which sandboxes may not leave (internal only) and
   * where DNS queries go. Rewritten whole, in one transaction, after every change.
   */
  async syncGateway(): Promise<void> {
    const noEgress = this.localSandboxes().filter((s) => s.egressIp !== '' && !this.#reachesOutside(s)).map((s) => s.egressIp);
    try {
      await ensureEgress(this.#o.dataplane.context, this.#o.egress, { noEgress, dnsPort: this.#o.dnsPort?.() });
    } catch (error) {
      this.#log.error({ err: (error as Error).message }, 'cannot program the gateway bridge table');
    }
    await this.#o.onGatewayChange?.();
  }

  /** Each local sandbox's port on the gateway bridge and the only source (MAC, address) it may use there. */
  gatewayPins(): GuardPin[] {
    return this.localSandboxes().filter((s) => s.egressIp !== '').map((s) => ({
      port: egressVethFor(this.#o.dataplane.sandbox(s.netns).key),
      mac: egressMacFor(s.egressIp),
      ip: s.egressIp,
    }));
  }

  /**
   * Gateway links made before the host guard have a random MAC and are not in
   * the guarded group: re-plugging them (idempotent) fixes both. Checked with
   * one listing, so a restart with nothing to repair costs one command.
   */
  async #guardOldEgressPorts(): Promise<void> {
    const context = this.#o.dataplane.context;
    const records = this.localSandboxes().filter((s) => s.egressIp !== '');
    const keys = new Map(records.map((s) => [this.#o.dataplane.sandbox(s.netns).key, s] as const));
    const unguarded = await unguardedEgressPorts(context, [...keys.keys()]).catch((e: Error) => {
      this.#log.warn({ err: e.message }, 'cannot list the gateway bridge ports');
      return [];
    });
    for (const key of unguarded) {
      const record = keys.get(key)!;
      const first = record.attachments[0];
      const mtu = ((first && this.#realised.get(first.networkId)?.mtu) ?? 1450) + 50;
      await attachEgress(context, this.#o.dataplane.sandbox(record.netns), this.#o.egress, record.egressIp, mtu, this.#reachesOutside(record))
        .then(() => this.#log.info({ sandbox: record.netns }, 'gateway link re-plugged into the guarded group'))
        .catch((e: Error) => this.#log.warn({ sandbox: record.netns, err: e.message }, 'cannot re-plug the gateway link'));
    }
  }

  /**
   * `ip netns exec NAME` reads /etc/netns/NAME/resolv.conf: point it at the
   * embedded resolver, unless someone else put a file there (then theirs is
   * kept: the sandbox is attached and resolves through their servers).
   */
  #writeResolvConf(sandbox: Sandbox, record: LocalSandbox): void {
    if (sandbox.ref.kind !== 'name' || record.egressIp === '') return;
    const nameserver = egressGateway(this.#o.egress);
    try {
      if (this.#o.dataplane.writeResolvConf(sandbox.ref.name, [`nameserver ${nameserver}`, 'options ndots:0']) === 'foreign') {
        this.#log.warn(
          { sandbox: record.netns, path: `/etc/netns/${sandbox.ref.name}/resolv.conf` },
          `kept a resolv.conf weft did not write: cluster names resolve in this sandbox only through nameserver ${nameserver}; remove the file (or add that line) to use them`,
        );
      }
    } catch (error) {
      this.#log.warn({ sandbox: record.netns, err: (error as Error).message }, 'cannot write the sandbox resolv.conf');
    }
  }

  /** Lowest address of the host-local egress subnet that no local sandbox uses (the bridge has the first). */
  #freeEgressIp(): string {
    const cidr = parseCidr(this.#o.egress.subnet);
    const used = new Set(this.localSandboxes().map((s) => s.egressIp));
    for (let value = cidr.start + 2; value < cidr.end - 1; value++) {
      const ip = formatIPv4(value);
      if (!used.has(ip)) return ip;
    }
    throw new AgentError(status.RESOURCE_EXHAUSTED, `the egress subnet ${this.#o.egress.subnet} is full; give the agent a larger --egress-subnet`);
  }

  async #leaveNetwork(networkId: string): Promise<void> {
    this.#o.tables.delete(NETWORK_HOSTS, `${networkId}|${this.#o.selfId}`);
    this.#o.tables.leaveNetwork(networkId);
    const realised = this.#realised.get(networkId);
    if (realised) {
      this.#realised.delete(networkId);
      await this.#o.dataplane.removeNetwork(realised.vni).catch((e: Error) => this.#log.warn({ err: e.message }, 'removing the network namespace failed'));
    }
  }

  #spec(network: NetworkObject): NetworkSpec {
    return { name: network.name, vni: network.vni, subnet: network.subnet, gateway: network.gateway, vtep: this.#o.vtep };
  }

  async #realise(network: NetworkObject): Promise<Network> {
    const known = this.#realised.get(network.id);
    if (known) return known;
    try {
      const { network: realised, changes } = await this.#o.dataplane.ensureNetwork(this.#spec(network));
      if (changes.length > 0) this.#log.info({ network: network.name, vni: network.vni, changes }, 'network namespace ready');
      this.#realised.set(network.id, realised);
      return realised;
    } catch (error) {
      throw new AgentError(status.INTERNAL, `cannot set up network "${network.name}" on this host: ${(error as Error).message}`);
    }
  }

  #localNetworks(): NetworkObject[] {
    const ids = new Set(this.localSandboxes().flatMap((s) => s.attachments.map((a) => a.networkId)));
    return this.networks.list().filter((n) => ids.has(n.id) && this.#realised.has(n.id));
  }

  /** Network namespaces left behind (a crash between detach and remove) are deleted at start-up. */
  async #removeUnusedNetworks(): Promise<void> {
    const inUse = new Set(this.#localNetworks().map((n) => n.vni));
    for (const vni of await this.#o.dataplane.listNetworks()) {
      if (!inUse.has(vni)) await this.#o.dataplane.removeNetwork(vni).catch(() => undefined);
    }
  }

  #startDetached(record: LocalSandbox, command: string[]): number {
    const logDir = join(this.#o.dataDir, 'sandboxes');
    mkdirSync(logDir, { recursive: true, mode: 0o700 });
    const log = openSync(join(logDir, `${record.id}.log`), 'a', 0o600);
    const child = spawn('ip', ['netns', 'exec', record.netns, ...command], { detached: true, stdio: ['ignore', log, log] });
    closeSync(log);
    child.unref();
    child.on('error', (error) => this.#log.warn({ sandbox: record.netns, err: error.message }, 'the sandbox command failed to start'));
    return child.pid ?? 0;
  }

  /** A detached `weft run` sandbox goes away when its process does. */
  async #reapExitedProcesses(): Promise<void> {
    for (const record of this.localSandboxes()) {
      if (record.pid > 0 && !isProcessAlive(record.pid)) {
        this.#log.info({ sandbox: record.netns, pid: record.pid }, 'sandbox process exited; removing the sandbox');
        await this.detach(record.netns).catch((e: Error) => this.#log.warn({ err: e.message }, 'removing an exited sandbox failed'));
      }
    }
  }

  #info(record: LocalSandbox): SandboxInfo {
    const endpoints = record.attachments.map((a) => ({
      id: a.endpointId,
      networkId: a.networkId,
      name: a.name,
      ip: a.ip,
      mac: a.mac,
      nodeId: this.#o.selfId,
      vtep: this.#o.vtep,
      sandbox: record.netns,
      aliases: a.aliases,
      services: a.services,
      unhealthyServices: this.#unhealthyOf(a.endpointId),
    }));
    return { id: record.id, netns: record.netns, pid: record.pid, endpoints };
  }

  stop(): void {
    this.#programmer.stop();
    if (this.#watchTimer) clearInterval(this.#watchTimer);
  }
}

