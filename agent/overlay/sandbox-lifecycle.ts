// The life of a local sandbox: made or adopted, attached to networks (an
// address, an interface, an endpoint entry each), plugged into the gateway
// bridge, its ports published, its command started; detached network by
// network, and deleted with its last attachment if weft made it. A step that
// fails rolls back what the request made, so a refusal leaves nothing behind.
// The Overlay runs these one at a time (attachments and IPs must not interleave).
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { status } from '@grpc/grpc-js';
import type { Dataplane, Sandbox } from '../../dataplane/index.ts';
import { macFromIp } from '../../dataplane/index.ts';
import { formatIPv4, parseIPv4 } from '../../lib/ipv4.ts';
import { OBJECT_NAME, OBJECT_NAME_RULE } from '../../lib/names.ts';
import type { PortPublication } from '../../lib/publish-spec.ts';
import { AgentError, badRequest, notFound, precondition } from '../api/errors.ts';
import type { NetworkObject } from '../wire/objects-codec.ts';
import type { DetachedProcesses } from './detached.ts';
import type { EndpointHealth } from './endpoint-health.ts';
import type { Gateway } from './gateway.ts';
import type { HostNetworks } from './host-networks.ts';
import type { LocalEndpoints } from './local-endpoints.ts';
import type { LocalAttachment, LocalSandbox, LocalState } from './local-state.ts';
import type { Networks } from './networks.ts';
import { Publisher } from './publisher.ts';
import { ContainerShaping } from './container-shaping.ts';
import { checkSandboxRequest, servicesToBack, type ContainerKey, type SandboxInfo, type SandboxRequest } from './sandbox-request.ts';
import type { Services } from './services.ts';
import { ipSpace, type Allocations } from './spaces.ts';

export interface SandboxLifecycleOptions {
  dataplane: Dataplane;
  allocations: Allocations;
  networks: Networks;
  services: Services;
  local: LocalState;
  hostNetworks: HostNetworks;
  gateway: Gateway;
  publisher: Publisher;
  detached: DetachedProcesses;
  endpoints: LocalEndpoints;
  health: EndpointHealth;
  logger: Logger;
  /** The service plane reprograms for the local sandboxes; resolves with why `netns` could not be, if it could not. */
  onLocalChange?: ((netns?: string) => Promise<string | undefined>) | undefined;
}

export class SandboxLifecycle {
  readonly #o: SandboxLifecycleOptions;
  readonly #shaping: ContainerShaping;

  constructor(options: SandboxLifecycleOptions) {
    this.#o = options;
    this.#shaping = new ContainerShaping(options.dataplane);
  }

  async create(request: SandboxRequest): Promise<SandboxInfo> {
    checkSandboxRequest(request);
    const networks = request.networks.map((n) => this.#o.networks.require(n));
    if (new Set(networks.map((n) => n.id)).size !== networks.length) throw badRequest('each --network may be given once');
    const services = servicesToBack(request.services ?? [], networks, this.#o.services, (id) => this.#o.networks.byId(id)?.name ?? id);
    if (request.containerId !== undefined) {
      const existing = this.#o.local.byContainer(request.containerId, request.ifname ?? '');
      // A runtime retries ADD: the same key gets the same attachment, not a second address.
      if (existing) return this.#sameContainer(existing.sandbox, existing.attachment, request, networks[0]!);
    }
    const adopted = request.netns !== undefined ? this.#o.local.byNetns(request.netns) : undefined;
    // Refused before anything is made: a rollback would also undo the attachment the sandbox has.
    const already = networks.find((n) => adopted?.attachments.some((a) => a.networkId === n.id));
    if (already) throw precondition(`the sandbox is already attached to network "${already.name}"`);
    const published = await this.#claimPorts(request, networks, adopted);
    const id = adopted?.id ?? randomBytes(4).toString('hex');
    const sandbox = adopted ? this.#o.dataplane.sandbox(adopted.netns) : await this.#open(id, request.netns);
    const record: LocalSandbox = adopted ?? { id, netns: this.#netnsOf(sandbox), owned: sandbox.owned, pid: 0, egressIp: '', attachments: [], published: [] };
    // Before the endpoints are published: each entry names the sandbox's ports (`weft endpoints`).
    record.published.push(...published);
    try {
      for (const network of networks) {
        const serviceNames = services.filter((s) => s.networkId === network.id).map((s) => s.name);
        record.attachments.push(await this.#attach(sandbox, network, record, request, serviceNames));
        this.#o.local.sandboxes.set(record.id, record);
        this.#o.local.save();
      }
      if (request.bandwidth) await this.#shape(sandbox, record.attachments.at(-1)!, request);
      await this.#o.gateway.plug(sandbox, record);
      if (published.length > 0) await this.#o.gateway.isolate(sandbox, record);
      if (adopted && published.length > 0) this.#o.endpoints.republish(record); // its older endpoints name the new ports too
    } catch (error) {
      record.published = record.published.filter((p) => !published.includes(p));
      await this.#rollback(sandbox, record, networks.map((n) => n.id));
      throw error;
    }
    // Everything the workload sees is in place before it starts (weft run --detach here, the
    // CLI's foreground run once this returns): resolv.conf (`ip netns exec` mounts it only if it
    // exists when the command starts), the gateway table, the load-balancing table and the
    // resolver's view of this sandbox.
    this.#o.gateway.writeResolvConf(sandbox, record);
    await this.#o.gateway.sync();
    const unprogrammed = await this.#o.onLocalChange?.(record.netns);
    if (unprogrammed !== undefined) {
      await this.#rollback(sandbox, record, networks.map((n) => n.id));
      await this.#afterLocalChange();
      throw new AgentError(status.INTERNAL, `cannot program the sandbox's service load balancing: ${unprogrammed}`);
    }
    if (request.command) {
      record.pid = this.#o.detached.start(record, request.command);
      this.#o.local.save();
    }
    return this.info(record);
  }

  /** Detaches a sandbox from one network, or from all; a sandbox weft made is deleted with its last attachment. */
  async detach(netns: string, networkName?: string): Promise<SandboxInfo> {
    const record = this.#o.local.byNetns(netns);
    if (!record) throw notFound(`no sandbox "${netns}" on this host; list endpoints with \`weft endpoints\``);
    const networkIds = networkName === undefined ? record.attachments.map((a) => a.networkId) : [this.#o.networks.require(networkName).id];
    if (networkName !== undefined && !record.attachments.some((a) => a.networkId === networkIds[0])) {
      throw precondition(`sandbox "${netns}" is not attached to network "${networkName}"`);
    }
    const info = this.info(record);
    await this.#rollback(this.#o.dataplane.sandbox(record.netns), record, networkIds);
    await this.#afterLocalChange();
    return info;
  }

  /** Detaches what a container runtime attached for (containerId, ifname); undefined when there is nothing (DEL must then succeed). */
  async detachContainer(containerId: string, ifname: string): Promise<SandboxInfo | undefined> {
    const info = await this.#releaseContainer(containerId, ifname);
    if (info) await this.#afterLocalChange();
    return info;
  }

  /** Releases one container attachment; the caller syncs the gateway once for all it released. */
  async #releaseContainer(containerId: string, ifname: string): Promise<SandboxInfo | undefined> {
    const found = this.#o.local.byContainer(containerId, ifname);
    if (!found) return undefined;
    const info = this.info(found.sandbox);
    // The namespace may be gone already (the runtime deleted it first): the host-side veth,
    // the address and the entries are weft's and are released all the same.
    await this.#rollback(this.#o.dataplane.sandbox(found.sandbox.netns), found.sandbox, [found.attachment.networkId]);
    return info;
  }

  async #afterLocalChange(): Promise<void> {
    await this.#o.gateway.sync();
    void this.#o.onLocalChange?.();
  }

  /**
   * CNI GC: detaches every attachment made through CNI network `cniNetwork` on `network`
   * whose (containerId, ifname) is not in `valid`, and returns their keys. Attachments made
   * otherwise (weft's own, Docker's, another CNI network's) are never touched.
   */
  async collectContainers(network: NetworkObject, cniNetwork: string, valid: readonly ContainerKey[]): Promise<ContainerKey[]> {
    const keep = new Set(valid.map((v) => `${v.containerId}/${v.ifname}`));
    const stale = this.#o.local.cniAttachments(network.id, cniNetwork).filter((a) => !keep.has(`${a.containerId}/${a.ifname}`));
    const removed: ContainerKey[] = [];
    for (const { containerId, ifname } of stale) {
      if (await this.#releaseContainer(containerId, ifname)) removed.push({ containerId, ifname });
    }
    if (removed.length > 0) await this.#afterLocalChange();
    return removed;
  }

  /**
   * Names a container's attachment that was published without a name (its runtime could not say
   * it in time) and publishes it again; false when there is no such attachment or it has a name.
   */
  nameContainer(containerId: string, ifname: string, name: string): boolean {
    if (!OBJECT_NAME.test(name)) throw badRequest(`container name "${name}" is not a weft name (${OBJECT_NAME_RULE})`);
    const found = this.#o.local.byContainer(containerId, ifname);
    const network = found && this.#o.networks.byId(found.attachment.networkId);
    if (!found || !network || found.attachment.name !== '') return false;
    found.attachment.name = name;
    this.#o.local.save();
    this.#o.endpoints.publish(network, found.sandbox, found.attachment);
    return true;
  }

  /** What differs in the kernel from a container's attachment (interface, address, route): CNI CHECK. */
  async checkContainer(containerId: string, ifname: string): Promise<{ info: SandboxInfo; problems: string[] }> {
    const found = this.#o.local.byContainer(containerId, ifname);
    if (!found) throw notFound(`no attachment for container ${containerId} interface ${ifname} on this host`);
    const { sandbox, attachment } = found;
    const network = this.#o.networks.byId(attachment.networkId);
    if (!network) return { info: this.info(sandbox), problems: [`network ${attachment.networkId} no longer exists`] };
    const index = sandbox.attachments.indexOf(attachment);
    const findings = await this.#o.dataplane.doctor({
      networks: [this.#o.hostNetworks.spec(network)],
      attachments: [{
        sandbox: sandbox.netns, vni: attachment.vni,
        spec: { ip: attachment.ip, mac: attachment.mac, ifname: attachment.ifname, defaultRoute: index === 0 && !this.#o.gateway.reachesOutside(sandbox) },
      }],
    });
    // Only the attachment's own findings: the network's are `weft doctor`'s business.
    const problems = findings.filter((f) => f.subject.startsWith('sandbox ')).map((f) => `${f.subject}: ${f.problem}`);
    problems.push(...(await this.#shaping.problems(this.#o.dataplane.sandbox(sandbox.netns), attachment)));
    return { info: this.info(sandbox), problems };
  }

  /** A sandbox as the API answers about it: endpoints, interfaces, resolver and default gateway. */
  info(record: LocalSandbox): SandboxInfo {
    const endpoints = record.attachments.map((a) => this.#o.endpoints.endpointOf(record, a));
    const interfaces = record.attachments.map((a) => {
      const network = this.#o.networks.byId(a.networkId);
      return { network: network?.name ?? '', ifname: a.ifname, mac: a.mac || macFromIp(a.ip), ip: a.ip, prefixLength: network ? Number(network.subnet.split('/')[1]) : 0, gateway: network?.gateway ?? '' };
    });
    const nameserver = record.egressIp === '' ? '' : this.#o.gateway.nameserver();
    // As the data plane sets it: through the gateway bridge when a network may leave the host, else the first network's gateway.
    const defaultGateway = this.#o.gateway.reachesOutside(record) ? nameserver : (interfaces[0]?.gateway ?? '');
    return { id: record.id, netns: record.netns, pid: record.pid, endpoints, interfaces, nameserver, defaultGateway };
  }

  async #open(id: string, netns: string | undefined): Promise<Sandbox> {
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
    if (attachment.networkId !== network.id) throw precondition(`${what} is already attached to network "${this.#o.networks.byId(attachment.networkId)?.name ?? attachment.networkId}"`);
    const netns = this.#netnsOf(this.#o.dataplane.sandbox(request.netns ?? ''));
    if (netns !== record.netns) throw precondition(`${what} is already attached in namespace ${record.netns}, not ${netns}`);
    if (!ContainerShaping.same(attachment.bandwidth, request.bandwidth)) throw precondition(`${what} is already attached with other bandwidth limits; delete it (CNI DEL) to change them`);
    return this.info(record);
  }

  /** Host ports for the request (publisher.ts), checked before anything is made: a refusal leaves nothing behind. */
  #claimPorts(request: SandboxRequest, networks: NetworkObject[], adopted: LocalSandbox | undefined): Promise<PortPublication[]> {
    const wanted = request.publish ?? [];
    if (wanted.length > 0 && networks.every((n) => n.internal) && !(adopted && this.#o.gateway.reachesOutside(adopted))) {
      throw badRequest('published ports need a network that is not --internal: answers to outside clients leave through the host\'s gateway bridge, which internal networks do not use');
    }
    return this.#o.publisher.claim(wanted);
  }

  async #attach(sandbox: Sandbox, network: NetworkObject, record: LocalSandbox, request: SandboxRequest, services: string[]): Promise<LocalAttachment> {
    const realised = await this.#o.hostNetworks.realise(network);
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
        cniNetwork: request.cniNetwork ?? '',
        addressHeld: request.address !== undefined,
      };
      // A backend of a checked service gets traffic only once a check has passed.
      const checked = services.filter((name) => this.#o.services.byName(name)?.health.kind !== '');
      this.#o.health.startFailing(attachment.endpointId, checked);
      this.#o.endpoints.publish(network, record, attachment);
      return attachment;
    } catch (error) {
      if (request.address === undefined) await this.#o.allocations.free(space.name, ipValue).catch(() => undefined);
      throw new AgentError(status.INTERNAL, `cannot attach the sandbox to network "${network.name}": ${(error as Error).message}`);
    }
  }

  /** A container's bandwidth limits on its (single) new attachment: refused (and the attachment rolled back by the caller) if they cannot work. */
  async #shape(sandbox: Sandbox, attachment: LocalAttachment, request: SandboxRequest): Promise<void> {
    const mtu = this.#o.hostNetworks.mtu(attachment.networkId);
    if (mtu === undefined) throw new AgentError(status.INTERNAL, `network ${attachment.networkId} is not realised on this host`);
    try {
      await this.#shaping.apply(sandbox, attachment, request.bandwidth!, mtu, () => this.#o.local.save());
    } catch (error) {
      if (error instanceof AgentError) throw error;
      throw new AgentError(status.INTERNAL, `cannot set the bandwidth limits: ${(error as Error).message}`);
    }
  }

  /** Undoes attachments (endpoint entries, IPs, interfaces) and forgets the sandbox when nothing is left. */
  async #rollback(sandbox: Sandbox, record: LocalSandbox, networkIds: string[]): Promise<void> {
    const log = this.#o.logger;
    for (const attachment of record.attachments.filter((a) => networkIds.includes(a.networkId))) {
      this.#o.endpoints.withdraw(attachment);
      await this.#o.dataplane.detach(sandbox, attachment.vni).catch((e: Error) => log.warn({ err: e.message }, 'detach failed'));
      await this.#shaping.remove(sandbox, attachment).catch((e: Error) => log.warn({ err: e.message }, 'removing the bandwidth limits failed'));
      const network = this.#o.networks.byId(attachment.networkId);
      if (network && !attachment.addressHeld) await this.#o.allocations.free(ipSpace(network.id, network.subnet, network.gateway).name, parseIPv4(attachment.ip)).catch(() => undefined);
    }
    record.attachments = record.attachments.filter((a) => !networkIds.includes(a.networkId));
    if (record.published.length > 0 && record.attachments.length > 0 && !this.#o.gateway.reachesOutside(record)) {
      // Left on internal networks only, the sandbox has no route back to a client: its ports go.
      log.info({ sandbox: record.netns, ports: Publisher.describe(record) }, 'unpublished the ports of a sandbox left on internal networks only');
      record.published = [];
      this.#o.endpoints.republish(record);
      await this.#o.gateway.isolate(sandbox, record);
    }
    await this.#o.gateway.afterDetach(sandbox, record);
    if (record.attachments.length === 0) {
      if (record.owned) this.#o.detached.stopWorkload(record);
      if (record.owned) await this.#o.dataplane.destroySandbox(sandbox, []).catch((e: Error) => log.warn({ err: e.message }, 'destroy failed'));
      this.#o.local.sandboxes.delete(record.id);
    }
    this.#o.local.save();
    for (const id of networkIds) {
      if (this.#o.local.attachmentsOn(id).length === 0) await this.#o.hostNetworks.leave(id);
    }
  }
}
