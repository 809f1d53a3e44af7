// Host port publishing as the overlay sees it (docs/publishing.md): which host
// ports the local sandboxes publish, whether a new publication may have its
// port, and the kernel table that follows from the local sandboxes. The table
// is derived from the saved sandboxes and written whole, so an agent that was
// killed rewrites exactly what is published when it starts, and a sandbox's
// ports leave with it.
import type { Logger } from 'pino';
import type { Finding } from '../../dataplane/index.ts';
import type { HostListener, PublishPlane, PublishRule } from '../../dataplane/publish.ts';
import { ANY_ADDRESS, formatPublication, samePublishedSocket, type PortPublication } from '../../lib/publish-spec.ts';
import { precondition } from '../api/errors.ts';
import type { LocalSandbox } from './local-state.ts';

/** Where a free host port is looked for when -p names none (Docker's range, above most services). */
export const RANDOM_PORT_FIRST = 49_153;
export const RANDOM_PORT_LAST = 60_999;

export interface PublisherOptions {
  plane: PublishPlane;
  /** The gateway bridge's subnet: its first address is the resolver, never a published address. */
  subnet: string;
  sandboxes: () => LocalSandbox[];
  /** Host sockets the kernel holds without a process (the VXLAN port): never published. */
  reserved: readonly Pick<HostListener, 'protocol' | 'port'>[];
  logger: Logger;
  random?: () => number;
  /** Ports the ingress routing mesh takes on this host (agent/ingress): programmed with the sandboxes' and refused to them. */
  ingress?: () => IngressPort[];
}

/** A service's published port on this host (docs/publishing.md): DNAT to its network's ingress sandbox, or (mode=host) to a local backend. */
export interface IngressPort {
  service: string;
  published: number;
  protocol: 'tcp' | 'udp';
  /** The ingress sandbox's or the local backend's address on the gateway bridge. */
  targetIp: string;
  targetPort: number;
}

export class Publisher {
  readonly #o: PublisherOptions;

  constructor(options: PublisherOptions) {
    this.#o = options;
  }

  /**
   * The publications a new request gets: each fixed host port checked against
   * the other sandboxes' publications and the host's listening sockets, each
   * port left open (0) given a free one. Throws a clear refusal on a conflict.
   */
  async claim(requested: readonly PortPublication[]): Promise<PortPublication[]> {
    if (requested.length === 0) return [];
    const listeners = await this.#o.plane.listeners().catch((error: Error) => {
      throw precondition(`cannot list the host's listening sockets to check the published ports: ${error.message}`);
    });
    const addresses = await this.#o.plane.addresses().catch((error: Error) => {
      throw precondition(`cannot list the host's addresses to check the published ports: ${error.message}`);
    });
    const foreign = requested.find((p) => p.hostIp !== ANY_ADDRESS && !addresses.includes(p.hostIp));
    if (foreign) throw precondition(`cannot publish on ${foreign.hostIp}: it is not an address of this host (${addresses.join(', ')}); leave the address out to publish on all of them`);
    const taken: PortPublication[] = this.#published();
    const claimed: PortPublication[] = [];
    for (const want of requested.filter((p) => p.hostPort !== 0)) {
      const problem = this.#conflict(want, taken, listeners);
      if (problem) throw precondition(`cannot publish ${want.hostIp}:${want.hostPort}/${want.protocol}: ${problem}; choose another host port, or leave it out (-p ${want.port}/${want.protocol}) for a free one`);
      claimed.push(want);
      taken.push(want);
    }
    for (const want of requested.filter((p) => p.hostPort === 0)) {
      const chosen = { ...want, hostPort: this.#freePort(want, taken, listeners) };
      claimed.push(chosen);
      taken.push(chosen);
    }
    return claimed;
  }

  /**
   * Why this host cannot take these mesh ports (a sandbox's `-p`, a host
   * process, the VXLAN port); undefined when it can. Checked when a service is
   * created here; the other hosts check again as they program it (doctor).
   */
  async ingressConflict(ports: readonly { published: number; protocol: 'tcp' | 'udp' }[]): Promise<string | undefined> {
    const listeners = await this.#o.plane.listeners().catch((error: Error) => {
      throw precondition(`cannot list the host's listening sockets to check the published ports: ${error.message}`);
    });
    const taken = this.#published();
    for (const p of ports) {
      const problem = this.#conflict({ hostIp: ANY_ADDRESS, hostPort: p.published, port: p.published, protocol: p.protocol }, taken, listeners, false);
      if (problem) return `cannot publish ${p.published}/${p.protocol} on every host: ${problem}; choose another published port`;
    }
    return undefined;
  }

  /** What the kernel table holds: the local sandboxes' ports (those plugged into the gateway bridge), then the mesh's. */
  rules(): PublishRule[] {
    const own = this.#o.sandboxes().filter((s) => s.egressIp !== '').flatMap((s) =>
      s.published.map((p) => ({ hostIp: p.hostIp, hostPort: p.hostPort, protocol: p.protocol, targetIp: s.egressIp, targetPort: p.port })));
    return [...own, ...this.#ingressAdmitted().map((p) => ({ hostIp: ANY_ADDRESS, hostPort: p.published, protocol: p.protocol, targetIp: p.targetIp, targetPort: p.targetPort }))];
  }

  /** Mesh ports that no local sandbox had published first (a `-p` keeps its port; `ingressShadowed` reports the loser). */
  #ingressAdmitted(): IngressPort[] {
    return (this.#o.ingress?.() ?? []).filter((p) => !this.#shadowed(p));
  }

  /** Mesh ports this host does not program because a local sandbox publishes them (`weft doctor`). */
  ingressShadowed(): IngressPort[] {
    return (this.#o.ingress?.() ?? []).filter((p) => this.#shadowed(p));
  }

  #shadowed(port: IngressPort): boolean {
    return this.#published().some((q) => samePublishedSocket(q, { hostIp: ANY_ADDRESS, hostPort: port.published, protocol: port.protocol }));
  }

  /** Rewrites the table from the local sandboxes (if it changed, or `force`); errors are logged (doctor shows the difference). */
  async sync(force = false): Promise<void> {
    try {
      await this.#o.plane.apply(this.rules(), this.#o.subnet, force);
    } catch (error) {
      this.#o.logger.error({ err: (error as Error).message }, 'cannot program the published ports');
    }
  }

  async doctor(): Promise<Finding[]> {
    const shadowed = this.ingressShadowed().map((p) => ({
      subject: `service ${p.service}`,
      problem: `published port ${p.published}/${p.protocol} does not reach the service on this host: a local sandbox publishes it (weft run -p)`,
      hint: 'remove that sandbox (weft detach) or publish the service on another port',
    }));
    try {
      return [...shadowed, ...(await this.#o.plane.inspect(this.rules())).map((problem) => ({
        subject: 'published ports', problem,
        hint: 'the agent rewrites the table when a sandbox comes or goes, at start-up and every 30 s; if this persists, look for "published ports" errors in the agent log',
      }))];
    } catch (error) {
      return [{ subject: 'published ports', problem: `cannot read the publish table: ${(error as Error).message}`, hint: 'check that nft works on this host' }];
    }
  }

  /** The sandbox's publications as `weft endpoints` shows them. */
  static describe(sandbox: Pick<LocalSandbox, 'published'>): string[] {
    return sandbox.published.map(formatPublication);
  }

  #published(): PortPublication[] {
    return this.#o.sandboxes().flatMap((s) => s.published);
  }

  #conflict(want: PortPublication, taken: readonly PortPublication[], listeners: readonly HostListener[], meshToo = true): string | undefined {
    if (this.#o.reserved.some((r) => r.protocol === want.protocol && r.port === want.hostPort)) return 'the port carries the overlay itself (VXLAN)';
    const other = taken.find((p) => samePublishedSocket(p, want));
    if (other) return `${formatPublication(other)} is already published on this host`;
    const mesh = meshToo ? this.#o.ingress?.().find((p) => samePublishedSocket({ hostIp: ANY_ADDRESS, hostPort: p.published, protocol: p.protocol }, want)) : undefined;
    if (mesh) return `service "${mesh.service}" publishes ${mesh.published}/${mesh.protocol} on every host (weft service create --publish)`;
    const listener = listeners.find((l) => samePublishedSocket({ hostIp: l.address, hostPort: l.port, protocol: l.protocol }, want));
    if (listener) return `a process on this host listens on ${listener.address === ANY_ADDRESS ? '*' : listener.address}:${listener.port}/${listener.protocol}`;
    return undefined;
  }

  #freePort(want: PortPublication, taken: readonly PortPublication[], listeners: readonly HostListener[]): number {
    const span = RANDOM_PORT_LAST - RANDOM_PORT_FIRST + 1;
    const start = Math.floor((this.#o.random ?? Math.random)() * span);
    for (let i = 0; i < span; i++) {
      const hostPort = RANDOM_PORT_FIRST + ((start + i) % span);
      if (this.#conflict({ ...want, hostPort }, taken, listeners) === undefined) return hostPort;
    }
    throw precondition(`no free host port from ${RANDOM_PORT_FIRST} to ${RANDOM_PORT_LAST} for ${want.protocol}; name one with -p HOSTPORT:${want.port}`);
  }
}
