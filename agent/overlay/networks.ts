// Overlay networks: cluster objects in the `networks` table, keyed by name so
// that names are unique cluster-wide (two hosts creating the same name in a
// partition settle on one, last writer wins). VNI and subnet come from the
// conflict-free allocator unless the user asks for specific ones.
import { randomBytes } from 'node:crypto';
import { status } from '@grpc/grpc-js';
import { AddressError, cidrContains, cidrsOverlap, formatCidr, formatIPv4, parseCidr, subnetAt, subnetIndex } from '../../lib/ipv4.ts';
import type { TableService } from '../cluster/table-service.ts';
import { decodeEntries } from '../../controlplane/tables/index.ts';
import { AgentError, badRequest, notFound, precondition } from '../api/errors.ts';
import { decodeNetwork, encodeNetwork, type NetworkObject } from '../wire/objects-codec.ts';
import { OBJECT_NAME, OBJECT_NAME_RULE } from '../../lib/names.ts';
import { ipSpace, POOL_SUBNET_PREFIX, subnetSpace, VNI_SPACE, type Allocations } from './spaces.ts';

export const NETWORKS_TABLE = 'networks';
/** Largest and smallest subnets a network may have: /8 is plenty; /29 leaves 5 endpoints. */
const MIN_PREFIX = 8;
const MAX_PREFIX = 29;

export interface CreateNetwork {
  name: string;
  subnet?: string | undefined;
  vni?: number | undefined;
  internal: boolean;
}

export class Networks {
  readonly #tables: TableService;
  readonly #allocations: Allocations;
  readonly #pool: string;
  readonly #selfId: string;

  constructor(tables: TableService, allocations: Allocations, pool: string, selfId: string) {
    this.#tables = tables;
    this.#allocations = allocations;
    this.#pool = pool;
    this.#selfId = selfId;
  }

  list(): NetworkObject[] {
    // A malformed network from a peer is skipped, never programmed.
    const { decoded } = decodeEntries(this.#tables.tables.list(NETWORKS_TABLE), (entry) => decodeNetwork(entry.value));
    return decoded.map((d) => d.value).sort((a, b) => a.name.localeCompare(b.name));
  }

  byName(name: string): NetworkObject | undefined {
    return this.list().find((n) => n.name === name);
  }

  byId(id: string): NetworkObject | undefined {
    return this.list().find((n) => n.id === id);
  }

  require(name: string): NetworkObject {
    const network = this.byName(name);
    if (!network) throw notFound(`no network named "${name}"; list networks with \`weft network ls\` or create one with \`weft network create ${name}\``);
    return network;
  }

  async create(request: CreateNetwork): Promise<NetworkObject> {
    if (!OBJECT_NAME.test(request.name)) throw badRequest(`network name "${request.name}" must be ${OBJECT_NAME_RULE}`);
    const existing = this.byName(request.name);
    if (existing) throw new AgentError(status.ALREADY_EXISTS, `a network named "${request.name}" exists already (ID ${existing.id}, ${existing.subnet}); choose another name`);
    if (request.vni !== undefined && !(Number.isInteger(request.vni) && request.vni >= 1 && request.vni <= 16_777_215)) {
      throw badRequest(`VNI ${request.vni} is out of range: a VNI is an integer from 1 to 16777215`);
    }
    const subnet = request.subnet === undefined ? undefined : this.#checkSubnet(request.subnet);
    const vni = await this.#takeVni(request.vni);
    let taken: { subnet: string; poolSubnet: boolean };
    try {
      taken = await this.#takeSubnet(subnet);
    } catch (error) {
      await this.#allocations.free(VNI_SPACE.name, vni).catch(() => undefined);
      throw error;
    }
    const cidr = parseCidr(taken.subnet);
    const network: NetworkObject = {
      id: randomBytes(6).toString('hex'),
      name: request.name,
      vni,
      subnet: taken.subnet,
      gateway: formatIPv4(cidr.start + 1),
      internal: request.internal,
      createdBy: this.#selfId,
      poolSubnet: taken.poolSubnet,
    };
    this.#allocations.define(ipSpace(network.id, network.subnet, network.gateway), true);
    this.#tables.set(NETWORKS_TABLE, network.name, encodeNetwork(network));
    return network;
  }

  /** Removes a network once no host has endpoints on it; returns its VNI and subnet to the pools. */
  async remove(name: string, hostsWithEndpoints: string[]): Promise<NetworkObject> {
    const network = this.require(name);
    if (hostsWithEndpoints.length > 0) {
      throw precondition(`network "${name}" still has endpoints on ${hostsWithEndpoints.length} host(s) (${hostsWithEndpoints.join(', ')}); detach or stop them first (see \`weft endpoints --network ${name}\` on those hosts)`);
    }
    this.#tables.delete(NETWORKS_TABLE, network.name);
    await this.#allocations.free(VNI_SPACE.name, network.vni).catch(() => undefined);
    if (network.poolSubnet) {
      await this.#allocations.free(subnetSpace(this.#pool).name, subnetIndex(parseCidr(this.#pool), parseCidr(network.subnet))).catch(() => undefined);
    }
    this.#allocations.drop(`ip/${network.id}`);
    return network;
  }

  #checkSubnet(text: string): string {
    let cidr;
    try {
      cidr = parseCidr(text);
    } catch (error) {
      if (error instanceof AddressError) throw badRequest(`--subnet: ${error.message}`);
      throw error;
    }
    if (cidr.prefix < MIN_PREFIX || cidr.prefix > MAX_PREFIX) throw badRequest(`--subnet ${text}: the prefix length must be from /${MIN_PREFIX} to /${MAX_PREFIX}`);
    const pool = parseCidr(this.#pool);
    if (cidrsOverlap(cidr, pool) && !(cidr.prefix === POOL_SUBNET_PREFIX && cidrContains(pool, cidr))) {
      throw badRequest(`--subnet ${text} overlaps the default address pool ${this.#pool}: inside the pool a subnet must be a /${POOL_SUBNET_PREFIX}; choose one, or a subnet outside the pool`);
    }
    for (const other of this.list()) {
      if (cidrsOverlap(cidr, parseCidr(other.subnet))) throw badRequest(`--subnet ${text} overlaps network "${other.name}" (${other.subnet}); choose another subnet`);
    }
    return formatCidr(cidr);
  }

  async #takeVni(requested: number | undefined): Promise<number> {
    try {
      return requested === undefined ? await this.#allocations.allocate(VNI_SPACE.name) : await this.#allocations.allocateValue(VNI_SPACE.name, requested);
    } catch (error) {
      throw precondition(`cannot take ${requested === undefined ? 'a VNI' : `VNI ${requested}`}: ${(error as Error).message}`);
    }
  }

  async #takeSubnet(requested: string | undefined): Promise<{ subnet: string; poolSubnet: boolean }> {
    const pool = parseCidr(this.#pool);
    const space = subnetSpace(this.#pool).name;
    if (requested !== undefined) {
      const cidr = parseCidr(requested);
      if (!cidrContains(pool, cidr)) return { subnet: requested, poolSubnet: false };
      try {
        await this.#allocations.allocateValue(space, subnetIndex(pool, cidr));
      } catch (error) {
        throw precondition(`cannot take subnet ${requested}: ${(error as Error).message}`);
      }
      return { subnet: requested, poolSubnet: true };
    }
    let index: number;
    try {
      index = await this.#allocations.allocate(space);
    } catch (error) {
      throw precondition(`cannot take a subnet from the pool ${this.#pool}: ${(error as Error).message}`);
    }
    return { subnet: formatCidr(subnetAt(pool, POOL_SUBNET_PREFIX, index)), poolSubnet: true };
  }
}
