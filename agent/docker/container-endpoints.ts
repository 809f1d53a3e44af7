// Docker endpoints through their life: Join prepares the link (the container's
// namespace does not exist yet), a watcher adopts the namespace once dockerd
// has moved the interface into it (Docker calls nothing after that), Leave
// undoes whichever of the two happened. Checked on dockerd 20.10: the move
// happens in the container's prestart hook, after Join,
// ProgramExternalConnectivity and EndpointOperInfo have all returned, so none of
// them can finish the attachment. A namespace that vanished without a Leave (the
// agent was down when the container went) is released by the sweep.
import { existsSync } from 'node:fs';
import type { Logger } from 'pino';
import { KeyedSerializer } from '../../lib/serial.ts';
import type { Overlay } from '../overlay/overlay.ts';
import type { DockerState, DockerEndpoint } from './docker-state.ts';
import { NAME_WAITS, waitForContainerName, type NameWaitLimits, type NameWaits } from './container-name.ts';
import { OrphanAddresses, releaseHeldAddress } from './held-addresses.ts';

/** How often the watcher looks for the moved interface, and how long it waits for dockerd. */
const MOVE_POLL_MS = 25;
const MOVE_DEADLINE_MS = 120_000;
/** How often namespaces of adopted containers are checked for having gone without a Leave. */
const SWEEP_MS = 5_000;

/** The name Join gives the container's interface until Docker moves it (and again when Docker moves it back out). */
export function joinNameOf(endpointId: string): string {
  return `wd${endpointId.slice(0, 12)}`;
}

/** What tests shorten: the grace for unused addresses, the wait for dockerd's move and for its naming. */
export interface ContainerEndpointsOptions {
  orphans?: OrphanAddresses;
  moveDeadlineMs?: number;
  nameWaits?: NameWaits;
}

export class ContainerEndpoints {
  readonly #overlay: () => Overlay;
  readonly #state: DockerState;
  readonly #dockerSocket: string;
  readonly #log: Logger;
  readonly #serial = new KeyedSerializer();
  /** Endpoints whose moved interface is being waited for; Leave clears the entry to stop the wait. */
  readonly #waiting = new Set<string>();
  readonly #orphans: OrphanAddresses;
  #sweeper: NodeJS.Timeout | undefined;
  #stopped = false;

  /** How long dockerd may take to move a joined endpoint's interface. */
  readonly #moveDeadlineMs: number;
  readonly #nameWaits: NameWaits;

  constructor(overlay: () => Overlay, state: DockerState, dockerSocket: string, logger: Logger, options: ContainerEndpointsOptions = {}) {
    this.#moveDeadlineMs = options.moveDeadlineMs ?? MOVE_DEADLINE_MS;
    this.#nameWaits = options.nameWaits ?? NAME_WAITS;
    this.#overlay = overlay;
    this.#orphans = options.orphans ?? new OrphanAddresses();
    this.#state = state;
    this.#dockerSocket = dockerSocket;
    this.#log = logger.child({ component: 'docker-endpoints' });
  }

  /** Resumes waits a restart interrupted and starts the sweep. */
  start(): void {
    const adopted = this.#adoptedBeforeRestart();
    for (const [id, endpoint] of this.#state.endpoints) {
      if (endpoint.sandboxKey === '' || endpoint.ifname !== '') continue;
      const ifname = adopted.get(id);
      if (ifname === undefined) {
        this.#watch(id);
        continue;
      }
      // The overlay had adopted it when the agent was killed, before this record was saved:
      // it is adopted (and the sweep releases it at once if its namespace is gone meanwhile).
      endpoint.ifname = ifname;
      this.#state.save();
    }
    void this.sweep();
    this.#sweeper = setInterval(() => void this.sweep(), SWEEP_MS);
    this.#sweeper.unref();
  }

  /** Container ID -> interface of the Docker attachments the overlay holds (containerId is the endpoint ID). */
  #adoptedBeforeRestart(): Map<string, string> {
    try {
      return new Map(this.#overlay().localSandboxes().flatMap((s) => s.attachments)
        .filter((a) => a.containerId !== '' && a.addressHeld).map((a) => [a.containerId, a.ifname] as const));
    } catch (error) {
      this.#log.warn({ err: (error as Error).message }, 'cannot read the local sandboxes; waiting for every joined container again');
      return new Map();
    }
  }

  stop(): void {
    this.#stopped = true;
    clearInterval(this.#sweeper);
    this.#waiting.clear();
  }

  /** Makes the link Docker moves into `sandboxKey` (named `localName` until then) and waits for the move. */
  join(id: string, sandboxKey: string, localName: string): Promise<void> {
    return this.#serial.run(id, async () => {
      const endpoint = this.#require(id);
      if (endpoint.ifname !== '') throw new Error(`endpoint ${id} is joined already (to ${endpoint.sandboxKey})`);
      endpoint.sandboxKey = sandboxKey;
      this.#state.save();
      await this.#overlay().containerLinks.prepare(endpoint.networkId, sandboxKey, localName, endpoint.mac);
      this.#watch(id);
    });
  }

  /** Undoes Join: the attachment if it was adopted, else the prepared link. Unknown endpoints are fine (a repeated Leave). */
  leave(id: string): Promise<void> {
    this.#waiting.delete(id);
    return this.#serial.run(id, async () => {
      const endpoint = this.#state.endpoints.get(id);
      if (!endpoint || endpoint.sandboxKey === '') return;
      await this.#release(id, endpoint);
    });
  }

  /** Forgets an endpoint (after Leave, or to undo a CreateEndpoint); its address stays Docker's until ReleaseAddress. */
  delete(id: string): Promise<void> {
    this.#waiting.delete(id);
    return this.#serial.run(id, async () => {
      const endpoint = this.#state.endpoints.get(id);
      if (!endpoint) return;
      if (endpoint.sandboxKey !== '') await this.#release(id, endpoint);
      this.#state.endpoints.delete(id);
      this.#state.save();
    });
  }

  /**
   * Containers gone without a Leave (the agent was down when Docker sent it),
   * released here, once; a later Leave, DeleteEndpoint or ReleaseAddress for
   * them is a no-op. Gone is: an adopted container whose namespace file is
   * gone, or whose interface Docker moved back into the agent's namespace
   * (it does on teardown; its namespace file lingers until Docker's cleanup,
   * a minute or two); a joined container no longer waited for (the wait
   * timed out, or the namespace vanished while it was being adopted) whose
   * namespace file is gone.
   */
  async sweep(): Promise<void> {
    const gone = await this.#goneEndpoints();
    for (const [id, reason] of gone) {
      await this.#serial.run(id, async () => {
        const current = this.#state.endpoints.get(id);
        // Leave, a new Join or the adoption may have come first.
        if (!current || current.sandboxKey === '' || this.#waiting.has(id) || (reason === 'namespace gone' && existsSync(current.sandboxKey))) return;
        this.#log.info({ endpoint: id, sandbox: current.sandboxKey, reason }, 'container gone without a Leave: releasing its link, endpoint and address');
        await this.#release(id, current);
        this.#state.endpoints.delete(id);
        this.#state.save();
        await releaseHeldAddress(this.#overlay(), this.#state, current.networkId, current.ip);
      }).catch((e: Error) => this.#log.warn({ endpoint: id, err: e.message }, 'cannot release a gone container\'s endpoint'));
    }
    await this.#releaseOrphans();
  }

  /** The joined endpoints whose container is gone (see sweep), with why. */
  async #goneEndpoints(): Promise<Map<string, string>> {
    const gone = new Map<string, string>();
    const adopted: string[] = [];
    for (const [id, endpoint] of this.#state.endpoints) {
      if (endpoint.sandboxKey === '' || this.#waiting.has(id)) continue;
      if (!existsSync(endpoint.sandboxKey)) gone.set(id, 'namespace gone');
      else if (endpoint.ifname !== '') adopted.push(id);
    }
    if (adopted.length === 0) return gone;
    const names = new Map(adopted.map((id) => [joinNameOf(id), id]));
    const back = await this.#overlay().containerLinks.backHome([...names.keys()]).catch((e: Error) => {
      this.#log.warn({ err: e.message }, 'cannot list the agent\'s links');
      return [];
    });
    for (const name of back) gone.set(names.get(name)!, 'interface moved back out of the container');
    return gone;
  }

  /** Addresses Docker holds that no endpoint has used for the grace period (a lost answer, a lost ReleaseAddress). */
  async #releaseOrphans(): Promise<void> {
    for (const [networkId, ip] of this.#orphans.due(this.#state, Date.now())) {
      this.#log.warn({ network: networkId, ip }, 'an address Docker was given is used by no endpoint: releasing it');
      await releaseHeldAddress(this.#overlay(), this.#state, networkId, ip)
        .catch((e: Error) => this.#log.warn({ network: networkId, ip, err: e.message }, 'cannot release an unused Docker address'));
    }
  }

  async #release(id: string, endpoint: DockerEndpoint): Promise<void> {
    const overlay = this.#overlay();
    if (endpoint.ifname !== '') await overlay.detachContainer(id, endpoint.ifname);
    else await overlay.containerLinks.remove(endpoint.networkId, endpoint.sandboxKey);
    endpoint.sandboxKey = '';
    endpoint.ifname = '';
    this.#state.save();
  }

  #require(id: string): DockerEndpoint {
    const endpoint = this.#state.endpoints.get(id);
    if (!endpoint) throw new Error(`endpoint ${id} was not created through weft (CreateEndpoint first)`);
    return endpoint;
  }

  #watch(id: string): void {
    this.#waiting.add(id);
    const deadline = Date.now() + this.#moveDeadlineMs;
    const step = async (): Promise<void> => {
      if (!this.#waiting.has(id)) return;
      const adopted = await this.#serial.run(id, () => this.#adoptIfMoved(id)).catch((e: Error) => {
        this.#log.error({ endpoint: id, err: e.message }, 'cannot attach the container\'s namespace');
        return true; // stop waiting: Leave will clean up what Join made
      });
      if (adopted || !this.#waiting.has(id)) {
        this.#waiting.delete(id);
        return;
      }
      if (Date.now() > deadline) {
        this.#waiting.delete(id);
        this.#log.warn({ endpoint: id }, `dockerd did not move the interface into the container within ${this.#moveDeadlineMs / 1000} s; the endpoint stays unattached until Leave, or is released once its namespace is gone`);
        return;
      }
      setTimeout(() => void step(), MOVE_POLL_MS).unref();
    };
    void step();
  }

  /** The container's name from dockerd's API, '' when it cannot say within `limits` (why is logged at `level`). */
  async #containerName(id: string, endpoint: DockerEndpoint, limits: NameWaitLimits, wanted: () => boolean, level: 'info' | 'warn'): Promise<string> {
    const answer = await waitForContainerName(this.#dockerSocket, endpoint.dockerNetworkId, id, { ...limits, wanted });
    if ('name' in answer) return answer.name;
    this.#log[level]({ endpoint: id, err: answer.error }, 'cannot read the container\'s name from dockerd');
    return '';
  }

  /**
   * Names an endpoint attached without a name once dockerd lists it (a starting dockerd
   * serves its API only after it has started its restart-policy containers).
   */
  async #nameLater(id: string, ifname: string): Promise<void> {
    const endpoint = this.#state.endpoints.get(id);
    if (!endpoint) return;
    const stillUnnamed = (): boolean => !this.#stopped && this.#state.endpoints.get(id) === endpoint && endpoint.ifname === ifname && endpoint.name === '';
    const name = await this.#containerName(id, endpoint, this.#nameWaits.afterAttach, stillUnnamed, 'warn');
    if (name === '') {
      if (stillUnnamed()) this.#log.warn({ endpoint: id }, 'dockerd did not name the container: its endpoint stays without a name (reachable by address only)');
      return;
    }
    await this.#serial.run(id, async () => {
      if (!stillUnnamed() || !(await this.#overlay().nameContainer(id, ifname, name))) return;
      endpoint.name = name;
      this.#state.save();
      this.#log.info({ endpoint: id, name }, 'container named after it was attached');
    }).catch((e: Error) => this.#log.warn({ endpoint: id, err: e.message }, 'cannot name the container\'s endpoint'));
  }

  /** Adopts the container's namespace once the interface is in it; false while it is not. */
  async #adoptIfMoved(id: string): Promise<boolean> {
    const endpoint = this.#state.endpoints.get(id);
    if (!endpoint || endpoint.sandboxKey === '' || !this.#waiting.has(id)) return true;
    const overlay = this.#overlay();
    const ifname = await overlay.containerLinks.moved(endpoint.networkId, endpoint.sandboxKey);
    if (ifname === undefined) return false;
    const network = overlay.networks.byId(endpoint.networkId);
    if (!network) throw new Error(`weft network ${endpoint.networkId} no longer exists`);
    const askDockerd = endpoint.name === '' && this.#dockerSocket !== '';
    if (askDockerd) endpoint.name = await this.#containerName(id, endpoint, this.#nameWaits.beforeAttach, () => this.#waiting.has(id), 'info');
    if (!this.#waiting.has(id)) return true; // Leave came while dockerd was asked for the name
    await overlay.createSandbox({
      networks: [network.name],
      name: endpoint.name,
      aliases: [],
      services: endpoint.services,
      netns: endpoint.sandboxKey,
      containerId: id,
      ifname,
      address: endpoint.ip,
    });
    endpoint.ifname = ifname;
    this.#state.save();
    this.#log.info({ endpoint: id, sandbox: endpoint.sandboxKey, ifname, name: endpoint.name }, 'container attached');
    if (askDockerd && endpoint.name === '') void this.#nameLater(id, ifname);
    return true;
  }
}
