// The host's gateway bridge as local sandboxes see it. Every sandbox gets a
// leg on it (the embedded resolver, health checks); a sandbox with a
// non-internal network also its default route there (egress). The bridge's
// table says which sandboxes may not leave and where DNS queries go; the host
// guard pins each port to its sandbox's own address (onChange).
import type { Logger } from 'pino';
import { status } from '@grpc/grpc-js';
import type { Dataplane, EgressPlane, Sandbox } from '../../dataplane/index.ts';
import { egressGateway, egressMacFor, egressVethFor } from '../../dataplane/egress.ts';
import { VXLAN_OVERHEAD } from '../../dataplane/index.ts';
import type { GuardPin } from '../../dataplane/host-guard.ts';
import { formatIPv4, parseCidr } from '../../lib/ipv4.ts';
import { Serializer } from '../../lib/serial.ts';
import { AgentError } from '../api/errors.ts';
import type { LocalSandbox } from './local-state.ts';
import type { Networks } from './networks.ts';

/** A leg's MTU when the sandbox's first network is not known: the default overlay MTU plus the overhead. */
const DEFAULT_LEG_MTU = 1450 + VXLAN_OVERHEAD;
/** How often the gateway and publish tables are written whatever the last write was: a table changed by hand is repaired within this. */
const REPAIR_INTERVAL_MS = 30_000;

export interface GatewayOptions {
  egress: EgressPlane;
  dataplane: Pick<Dataplane, 'sandbox' | 'writeResolvConf'>;
  networks: Networks;
  sandboxes: () => LocalSandbox[];
  /** The MTU of a network realised on this host. */
  mtuOf: (networkId: string) => number | undefined;
  /** The embedded resolver's port on the gateway address, once it listens. */
  dnsPort?: (() => number | undefined) | undefined;
  /** The published ports: their table follows the sandboxes plugged in here. */
  publisher?: { sync(force?: boolean): Promise<void> } | undefined;
  /** After the table was rewritten: resolves once the host guard has re-pinned. */
  onChange?: (() => Promise<void>) | undefined;
  logger: Logger;
}

export class Gateway {
  readonly #o: GatewayOptions;
  /** Syncs never interleave: each computes the tables from the sandboxes as they are when it starts. */
  readonly #syncs = new Serializer();
  #repairTimer: NodeJS.Timeout | undefined;

  constructor(options: GatewayOptions) {
    this.#o = options;
  }

  /** Whether the sandbox may leave the host (one of its networks is not internal). */
  reachesOutside(record: LocalSandbox): boolean {
    return record.attachments.some((a) => this.#o.networks.byId(a.networkId)?.internal === false);
  }

  /** The address sandboxes reach the embedded resolver at (the gateway bridge's). */
  nameserver(): string {
    return egressGateway(this.#o.egress.spec);
  }

  /** Plugs the sandbox in (once) and sets its default route for its current networks. */
  async plug(sandbox: Sandbox, record: LocalSandbox): Promise<void> {
    const outside = this.reachesOutside(record);
    try {
      if (record.egressIp === '') {
        const ip = this.#freeIp();
        await this.#o.egress.attach(sandbox, ip, this.#legMtu(record), outside, true);
        record.egressIp = ip;
      } else {
        await this.#o.egress.setRoute(sandbox, outside);
      }
    } catch (error) {
      throw new AgentError(status.INTERNAL, `cannot plug the sandbox into the gateway bridge: ${(error as Error).message}`);
    }
  }

  /** Opens a publisher's port to hairpin flows where the bridge needs it (dataplane/egress.ts, setEgressPublishing). Never throws. */
  async isolate(sandbox: Sandbox, record: LocalSandbox): Promise<void> {
    if (record.egressIp === '') return;
    await this.#o.egress.setPublishing(sandbox, record.published.length > 0).then(() => undefined)
      .catch((e: Error) => this.#o.logger.warn({ sandbox: record.netns, err: e.message }, 'cannot set the gateway port\'s isolation'));
  }

  /** After detaching networks: unplug a sandbox left with none, else fix its default route. Never throws. */
  async afterDetach(sandbox: Sandbox, record: LocalSandbox): Promise<void> {
    if (record.egressIp === '') return;
    if (record.attachments.length === 0) {
      await this.#o.egress.detach(sandbox).catch((e: Error) => this.#o.logger.warn({ err: e.message }, 'gateway link detach failed'));
      record.egressIp = '';
    } else {
      await this.#o.egress.setRoute(sandbox, this.reachesOutside(record)).catch((e: Error) => this.#o.logger.warn({ err: e.message }, 'default route update failed'));
    }
  }

  /**
   * Brings the bridge's table, the host routes to CNI containers and the
   * published ports in line with the local sandboxes, then lets the host guard
   * re-pin. The tables are written whole, each in one transaction, and only
   * when they differ from the last write unless `force` (start-up, repair).
   */
  sync(force = false): Promise<void> {
    return this.#syncs.run(() => this.#sync(force));
  }

  /** Forces a full write every REPAIR_INTERVAL_MS (a table changed by hand is repaired), until stop(). */
  startRepairs(): void {
    this.#repairTimer ??= setInterval(() => void this.sync(true), REPAIR_INTERVAL_MS);
    this.#repairTimer.unref();
  }

  stop(): void {
    if (this.#repairTimer) clearInterval(this.#repairTimer);
    this.#repairTimer = undefined;
  }

  async #sync(force: boolean): Promise<void> {
    const noEgress = this.#plugged().filter((s) => !this.reachesOutside(s)).map((s) => s.egressIp);
    const bridgeChanges = await this.#o.egress.ensure({ noEgress, dnsPort: this.#o.dnsPort?.() }, force)
      .catch((e: Error) => {
        this.#o.logger.error({ err: e.message }, 'cannot program the gateway bridge table');
        return [];
      });
    // A bridge made or brought up again lost the routes through it and its route_localnet
    // (set with the publish table): both are written again, whatever their last write was.
    const rewrite = force || bridgeChanges.length > 0;
    // After the bridge: the routes go through it, and ensure may just have made it.
    const routes = this.#containerRoutes().map(({ sandbox, ip }) => ({ ip, via: sandbox.egressIp }));
    await this.#o.egress.syncContainerRoutes(routes, rewrite)
      .catch((e: Error) => this.#o.logger.error({ err: e.message }, 'cannot program the host routes to CNI containers'));
    await this.#o.publisher?.sync(rewrite);
    await this.#o.onChange?.();
  }

  /** Each local sandbox's port on the bridge and the only source (MAC, address) it may use there. */
  pins(): GuardPin[] {
    const pin = (s: LocalSandbox, ip: string): GuardPin => ({ port: egressVethFor(this.#o.dataplane.sandbox(s.netns).key), mac: egressMacFor(s.egressIp), ip });
    // A CNI container's leg also carries its overlay addresses: answers to what portmap DNATs there.
    return [...this.#plugged().map((s) => pin(s, s.egressIp)), ...this.#containerRoutes().map(({ sandbox, ip }) => pin(sandbox, ip))];
  }

  /**
   * The overlay addresses of CNI containers that reach the host's routes
   * (container-routes.ts): chained plugins such as portmap DNAT to them. Only
   * where the container answers through its leg (a non-internal network).
   */
  #containerRoutes(): Array<{ sandbox: LocalSandbox; ip: string }> {
    return this.#plugged().filter((s) => this.reachesOutside(s)).flatMap((sandbox) => sandbox.attachments
      .filter((a) => a.containerId !== '' && !a.addressHeld && this.#o.networks.byId(a.networkId)?.internal === false)
      .map((a) => ({ sandbox, ip: a.ip })));
  }

  /**
   * Legs made before the host guard have a random MAC and are not in the
   * guarded group: re-plugging them (idempotent) fixes both. Checked with one
   * listing, so a restart with nothing to repair costs one command.
   */
  async guardOldPorts(): Promise<void> {
    const keys = new Map(this.#plugged().map((s) => [this.#o.dataplane.sandbox(s.netns).key, s] as const));
    const unguarded = await this.#o.egress.unguardedPorts([...keys.keys()]).catch((e: Error) => {
      this.#o.logger.warn({ err: e.message }, 'cannot list the gateway bridge ports');
      return [];
    });
    for (const key of unguarded) {
      const record = keys.get(key)!;
      await this.#o.egress.attach(this.#o.dataplane.sandbox(record.netns), record.egressIp, this.#legMtu(record), this.reachesOutside(record))
        .then(() => this.#o.logger.info({ sandbox: record.netns }, 'gateway link re-plugged into the guarded group'))
        .catch((e: Error) => this.#o.logger.warn({ sandbox: record.netns, err: e.message }, 'cannot re-plug the gateway link'));
    }
  }

  /**
   * `ip netns exec NAME` reads /etc/netns/NAME/resolv.conf: point it at the
   * embedded resolver, unless someone else put a file there (then theirs is
   * kept: the sandbox is attached and resolves through their servers).
   */
  writeResolvConf(sandbox: Sandbox, record: LocalSandbox): void {
    if (sandbox.ref.kind !== 'name' || record.egressIp === '') return;
    const nameserver = egressGateway(this.#o.egress.spec);
    try {
      if (this.#o.dataplane.writeResolvConf(sandbox.ref.name, [`nameserver ${nameserver}`, 'options ndots:0']) === 'foreign') {
        this.#o.logger.warn(
          { sandbox: record.netns, path: `/etc/netns/${sandbox.ref.name}/resolv.conf` },
          `kept a resolv.conf weft did not write: cluster names resolve in this sandbox only through nameserver ${nameserver}; remove the file (or add that line) to use them`,
        );
      }
    } catch (error) {
      this.#o.logger.warn({ sandbox: record.netns, err: (error as Error).message }, 'cannot write the sandbox resolv.conf');
    }
  }

  #plugged(): LocalSandbox[] {
    return this.#o.sandboxes().filter((s) => s.egressIp !== '');
  }

  /** A leg is a host-local link: it gets the underlay's MTU (the first network's overlay MTU plus VXLAN's overhead). */
  #legMtu(record: LocalSandbox): number {
    const first = record.attachments[0];
    const mtu = first && this.#o.mtuOf(first.networkId);
    return mtu === undefined ? DEFAULT_LEG_MTU : mtu + VXLAN_OVERHEAD;
  }

  /** Lowest address of the host-local egress subnet that no local sandbox uses (the bridge has the first). */
  #freeIp(): string {
    const cidr = parseCidr(this.#o.egress.spec.subnet);
    const used = new Set(this.#o.sandboxes().map((s) => s.egressIp));
    for (let value = cidr.start + 2; value < cidr.end - 1; value++) {
      const ip = formatIPv4(value);
      if (!used.has(ip)) return ip;
    }
    throw new AgentError(status.RESOURCE_EXHAUSTED, `the egress subnet ${this.#o.egress.spec.subnet} is full; give the agent a larger --egress-subnet`);
  }
}
