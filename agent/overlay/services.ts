// Services: cluster objects in the `services` table, keyed by name so names
// are unique cluster-wide (like networks). A vip-mode service holds a VIP from
// its network's address space (the same ring allocator as endpoint IPs), so a
// VIP can never collide with an endpoint; `rm` gives it back.
import { randomBytes } from 'node:crypto';
import { status } from '@grpc/grpc-js';
import { formatIPv4, parseIPv4 } from '../../lib/ipv4.ts';
import type { TableService } from '../cluster/table-service.ts';
import { decodeEntries } from '../../controlplane/tables/index.ts';
import { AgentError, badRequest, notFound, precondition } from '../api/errors.ts';
import { decodeService, encodeService, type HealthCheck, type NetworkObject, type ServiceObject, type ServicePort, type ServicePublish } from '../wire/objects-codec.ts';
import { ipSpace, type Allocations } from './spaces.ts';
import { SERVICE_NAME, SERVICE_NAME_RULE } from '../../lib/names.ts';
import { RESERVED_SERVICE_NAMES, sieveServices, type Candidate, type NetworkRange, type RefusedService } from '../../controlplane/services/service-sieve.ts';

export const SERVICES_TABLE = 'services';

export interface CreateService {
  name: string;
  network: NetworkObject;
  ports: ServicePort[];
  mode: 'vip' | 'dnsrr';
  health: HealthCheck;
  /** Ports every host accepts on (the ingress routing mesh, agent/ingress). */
  publish?: ServicePublish[];
}

/** Why this host cannot take a published port (a host process, a `weft run -p`); undefined when it can. */
export type HostPortCheck = (publish: readonly ServicePublish[]) => Promise<string | undefined>;

export class Services {
  readonly #tables: TableService;
  readonly #allocations: Allocations;
  readonly #selfId: string;
  readonly #networks: () => readonly NetworkObject[];
  readonly #hostPorts: HostPortCheck;

  /** `networks`: the known networks, which a VIP must belong to; `hostPorts`: whether this host can take a published port. */
  constructor(tables: TableService, allocations: Allocations, selfId: string, networks: () => readonly NetworkObject[], hostPorts: HostPortCheck) {
    this.#tables = tables;
    this.#allocations = allocations;
    this.#selfId = selfId;
    this.#networks = networks;
    this.#hostPorts = hostPorts;
  }

  /** The services this host resolves and programs (service-sieve.ts), by name. */
  list(): ServiceObject[] {
    return this.#sieve().services.sort((a, b) => a.name.localeCompare(b.name));
  }

  /** Services in the table that are left out, and why (`weft doctor`). */
  refused(): RefusedService[] {
    return this.#sieve().refused;
  }

  #sieve(): { services: ServiceObject[]; refused: RefusedService[] } {
    // A malformed service from a peer is never resolved or programmed.
    const { decoded, undecodable } = decodeEntries(this.#tables.tables.list(SERVICES_TABLE), (entry) => {
      const service = decodeService(entry.value);
      if (service.name !== entry.key) throw new Error(`its entry carries the service "${service.name}"`);
      return service;
    });
    const candidates: Candidate<ServiceObject>[] = decoded.map(({ entry, value }) => ({ service: value, lamport: entry.lamport, owner: entry.owner }));
    const refused: RefusedService[] = undecodable.map(({ entry, problem }) => ({ name: entry.key, problem }));
    const ranges = new Map<string, NetworkRange>(this.#networks().map((n) => [n.id, { subnet: n.subnet, gateway: n.gateway }]));
    const sieved = sieveServices(candidates, ranges);
    return { services: sieved.services, refused: [...refused, ...sieved.refused] };
  }

  byName(name: string): ServiceObject | undefined {
    return this.list().find((s) => s.name === name);
  }

  onNetwork(networkId: string): ServiceObject[] {
    return this.list().filter((s) => s.networkId === networkId);
  }

  require(name: string): ServiceObject {
    const service = this.byName(name);
    if (!service) throw notFound(`no service named "${name}"; list services with \`weft service ls\``);
    return service;
  }

  async create(request: CreateService): Promise<ServiceObject> {
    if (!SERVICE_NAME.test(request.name)) throw badRequest(`service name "${request.name}" must be ${SERVICE_NAME_RULE}`);
    if (RESERVED_SERVICE_NAMES.has(request.name.toLowerCase())) throw badRequest(`"${request.name}" is reserved for DNS (tasks.<service>); choose another name`);
    const existing = this.byName(request.name);
    if (existing) throw new AgentError(status.ALREADY_EXISTS, `a service named "${request.name}" exists already (ID ${existing.id}); choose another name or remove it first`);
    const ports = dedupePorts(request.ports);
    const publish = request.publish ?? [];
    await this.#checkPublish(request, publish);
    const vip = request.mode === 'vip' ? await this.#takeVip(request.network) : '';
    const service: ServiceObject = {
      id: randomBytes(6).toString('hex'),
      name: request.name,
      networkId: request.network.id,
      mode: request.mode,
      vip,
      ports,
      health: request.health,
      createdBy: this.#selfId,
      publish,
    };
    this.#tables.set(SERVICES_TABLE, service.name, encodeService(service));
    return service;
  }

  /** A published port is the cluster's: refused when another service or this host already holds it. */
  async #checkPublish(request: CreateService, publish: readonly ServicePublish[]): Promise<void> {
    if (publish.length === 0) return;
    if (request.mode !== 'vip') throw badRequest('--publish needs --mode vip: the ingress routing mesh balances over the service\'s live backends as its VIP does (Swarm refuses dnsrr with ingress publishing too)');
    if (request.network.internal) throw badRequest(`--publish needs a network that is not --internal: "${request.network.name}" is, and answers to outside clients leave through each host's gateway bridge`);
    for (const p of publish) {
      const holder = this.list().find((s) => s.publish.some((q) => q.published === p.published && q.protocol === p.protocol));
      if (holder) throw precondition(`cannot publish ${p.published}/${p.protocol}: service "${holder.name}" publishes it already on every host; choose another published port or remove that service first`);
    }
    const problem = await this.#hostPorts(publish);
    if (problem !== undefined) throw precondition(problem);
  }

  async remove(name: string, network: NetworkObject | undefined): Promise<ServiceObject> {
    const service = this.require(name);
    this.#tables.delete(SERVICES_TABLE, service.name);
    if (service.vip !== '' && network) {
      const space = ipSpace(network.id, network.subnet, network.gateway);
      this.#allocations.define(space, false);
      await this.#allocations.free(space.name, parseIPv4(service.vip)).catch(() => undefined);
    }
    return service;
  }

  async #takeVip(network: NetworkObject): Promise<string> {
    const space = ipSpace(network.id, network.subnet, network.gateway);
    this.#allocations.define(space, false);
    try {
      return formatIPv4(await this.#allocations.allocate(space.name));
    } catch (error) {
      throw precondition(`no virtual IP for the service on network "${network.name}": ${(error as Error).message}`);
    }
  }
}

function dedupePorts(ports: ServicePort[]): ServicePort[] {
  const seen = new Map(ports.map((p) => [`${p.port}/${p.protocol}`, p]));
  return [...seen.values()].sort((a, b) => a.port - b.port || a.protocol.localeCompare(b.protocol));
}
