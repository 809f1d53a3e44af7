// What a container runtime that moves interfaces itself (Docker's remote
// driver) needs before the overlay can adopt its namespace: an address from
// the network's allocation space, handed out ahead of the attachment, and a
// link whose sandbox end waits in the agent's namespace until the runtime has
// moved it into the container (dataplane/movable-link.ts). Once it has,
// Overlay.createSandbox adopts the namespace with that address and finishes.
import { status } from '@grpc/grpc-js';
import type { Dataplane } from '../../dataplane/index.ts';
import { formatIPv4, parseIPv4 } from '../../lib/ipv4.ts';
import { AgentError, notFound } from '../api/errors.ts';
import type { NetworkObject } from '../wire/objects-codec.ts';
import type { HostNetworks } from './host-networks.ts';
import type { Networks } from './networks.ts';
import { ipSpace, type Allocations } from './spaces.ts';

export interface ContainerLinksOptions {
  dataplane: Dataplane;
  allocations: Allocations;
  networks: Networks;
  hostNetworks: HostNetworks;
}

export class ContainerLinks {
  readonly #o: ContainerLinksOptions;

  constructor(options: ContainerLinksOptions) {
    this.#o = options;
  }

  /** A free address of the network, owned by the caller until freeAddress. */
  async allocateAddress(networkId: string): Promise<string> {
    const network = this.#network(networkId);
    const space = ipSpace(network.id, network.subnet, network.gateway);
    this.#o.allocations.define(space, false);
    try {
      return formatIPv4(await this.#o.allocations.allocate(space.name));
    } catch (error) {
      throw new AgentError(status.RESOURCE_EXHAUSTED, `no address left on network "${network.name}": ${(error as Error).message}`);
    }
  }

  async freeAddress(networkId: string, ip: string): Promise<void> {
    const network = this.#o.networks.byId(networkId);
    if (!network) return; // the network's addresses went with it
    const space = ipSpace(network.id, network.subnet, network.gateway);
    this.#o.allocations.define(space, false);
    await this.#o.allocations.free(space.name, parseIPv4(ip));
  }

  /** The network end on the bridge, the other end named `localName` in the agent's namespace for the runtime to move. */
  async prepare(networkId: string, netnsPath: string, localName: string, mac: string): Promise<void> {
    const network = this.#network(networkId);
    const realised = await this.#o.hostNetworks.realise(network);
    await this.#o.dataplane.prepareMovableLink(this.#o.dataplane.sandbox(netnsPath), realised, localName, mac);
  }

  /** The link's name inside the namespace once the runtime moved it there; undefined before. */
  async moved(networkId: string, netnsPath: string): Promise<string | undefined> {
    const network = this.#network(networkId);
    const realised = await this.#o.hostNetworks.realise(network);
    return this.#o.dataplane.movedLinkName(this.#o.dataplane.sandbox(netnsPath), realised);
  }

  /** Which of these Join names are links in the agent's namespace again (the runtime moved them back out). */
  backHome(localNames: readonly string[]): Promise<string[]> {
    return this.#o.dataplane.linksBackHome(localNames);
  }

  /** Removes a prepared link that never became an attachment (both ends go with the network end). */
  async remove(networkId: string, netnsPath: string): Promise<void> {
    const network = this.#o.networks.byId(networkId);
    if (!network) return;
    await this.#o.dataplane.detach(this.#o.dataplane.sandbox(netnsPath), network.vni);
  }

  #network(networkId: string): NetworkObject {
    const network = this.#o.networks.byId(networkId);
    if (!network) throw notFound(`weft network ${networkId} no longer exists (removed with \`weft network rm\`?)`);
    return network;
  }
}
