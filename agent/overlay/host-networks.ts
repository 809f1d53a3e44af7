// The networks this host takes part in: realised in the kernel (a network
// namespace with its bridge and VXLAN device) and announced in the
// cluster-wide `network-hosts` table, which tells every host who is on a
// network (a network is removed only when no live host is).
import type { Logger } from 'pino';
import { status } from '@grpc/grpc-js';
import type { Dataplane, Network, NetworkSpec } from '../../dataplane/index.ts';
import type { TableService } from '../cluster/table-service.ts';
import { AgentError } from '../api/errors.ts';
import type { NetworkObject } from '../wire/objects-codec.ts';

export const NETWORK_HOSTS = 'network-hosts';

export interface HostNetworksOptions {
  dataplane: Dataplane;
  tables: TableService;
  selfId: string;
  vtep: string;
  logger: Logger;
  /** Anti-entropy with a host already on the network, right after joining its topic. */
  syncNetwork: (networkId: string) => void;
}

export class HostNetworks {
  readonly #o: HostNetworksOptions;
  /** Networks set up in the kernel on this host, by network ID. */
  readonly #realised = new Map<string, Network>();

  constructor(options: HostNetworksOptions) {
    this.#o = options;
  }

  spec(network: NetworkObject): NetworkSpec {
    return { name: network.name, vni: network.vni, subnet: network.subnet, gateway: network.gateway, vtep: this.#o.vtep };
  }

  /** Sets the network up in the kernel (once; later calls return what was made). */
  async realise(network: NetworkObject): Promise<Network> {
    const known = this.#realised.get(network.id);
    if (known) return known;
    try {
      const { network: realised, changes } = await this.#o.dataplane.ensureNetwork(this.spec(network));
      if (changes.length > 0) this.#o.logger.info({ network: network.name, vni: network.vni, changes }, 'network namespace ready');
      this.#realised.set(network.id, realised);
      return realised;
    } catch (error) {
      throw new AgentError(status.INTERNAL, `cannot set up network "${network.name}" on this host: ${(error as Error).message}`);
    }
  }

  isRealised(networkId: string): boolean {
    return this.#realised.has(networkId);
  }

  mtu(networkId: string): number | undefined {
    return this.#realised.get(networkId)?.mtu;
  }

  /** Takes part in the network's gossip and says so in `network-hosts`; the first time, syncs with a host on it. */
  announce(networkId: string): void {
    const joining = !this.#o.tables.networks().includes(networkId);
    this.#o.tables.joinNetwork(networkId);
    // Once said, it stays said (only this host writes its key): writing it
    // again for every sandbox would only cost a gossip message, and would make
    // the sandbox's endpoint entry, written right after, wait for the next
    // coalesced flush instead of going out at once.
    const key = `${networkId}|${this.#o.selfId}`;
    if (this.#o.tables.tables.get(NETWORK_HOSTS, key) === undefined) this.#o.tables.set(NETWORK_HOSTS, key, new Uint8Array());
    if (joining) this.#o.syncNetwork(networkId);
  }

  /** The last local endpoint on the network left: stop announcing it and remove it from the kernel. */
  async leave(networkId: string): Promise<void> {
    this.#o.tables.delete(NETWORK_HOSTS, `${networkId}|${this.#o.selfId}`);
    this.#o.tables.leaveNetwork(networkId);
    const realised = this.#realised.get(networkId);
    if (realised) {
      this.#realised.delete(networkId);
      await this.#o.dataplane.removeNetwork(realised.vni).catch((e: Error) => this.#o.logger.warn({ err: e.message }, 'removing the network namespace failed'));
    }
  }

  /** Node IDs of live hosts that have endpoints on the network. */
  hostsOn(networkId: string): string[] {
    return this.#o.tables.tables
      .list(NETWORK_HOSTS)
      .filter((e) => e.key.startsWith(networkId + '|'))
      .map((e) => e.owner);
  }

  /** Network namespaces left behind (a crash between detach and remove) are deleted at start-up. */
  async removeUnused(inUse: ReadonlySet<number>): Promise<void> {
    for (const vni of await this.#o.dataplane.listNetworks()) {
      if (!inUse.has(vni)) await this.#o.dataplane.removeNetwork(vni).catch(() => undefined);
    }
  }
}
