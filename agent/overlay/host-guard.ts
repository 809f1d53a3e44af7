// Keeps the host guard (dataplane/host-guard.ts) in step with the cluster:
// which underlay addresses may send VXLAN here and which member ports are
// closed to sandboxes come from the roster; which address each sandbox's
// egress port may use comes from the local sandboxes. A roster change rewrites
// only the member sets, a sandbox change only the pins; both tables are
// written whole at start-up, and a periodic check rewrites them when the
// kernel differs (docs/security/host-guard.md).
import type { Logger } from 'pino';
import { isIPv4 } from 'node:net';
import type { Roster, MemberRecord } from '../../controlplane/cluster/roster.ts';
import type { DataplaneContext, Finding } from '../../dataplane/index.ts';
import { DEFAULT_DSTPORT } from '../../dataplane/index.ts';
import {
  applyHostGuard, inspectHostGuard, updateGuardMembers, updateGuardPins,
  type ClusterPort, type GuardMembers, type GuardPin, type HostGuardState,
} from '../../dataplane/host-guard.ts';
import { CoalescedRun } from '../util/coalesced-run.ts';

const PERIODIC_CHECK_MS = 30_000;
const RETRY_MS = 1_000;

const validPort = (port: number): boolean => Number.isInteger(port) && port >= 1 && port <= 65535;

/**
 * The member sets. VXLAN is accepted from every active member but this host,
 * whatever liveness says: a dead member that comes back must carry traffic at
 * once, and it still holds the cluster's credentials, so refusing its frames
 * would protect nothing. Left and removed members are out. A record with an
 * address or port that is not one is skipped, never allowed to stop the rest.
 */
export function guardMembers(records: readonly MemberRecord[], selfId: string): GuardMembers {
  const active = records.filter((r) => r.status === 'active' && isIPv4(r.address));
  const clusterPorts: ClusterPort[] = active.flatMap((r) => [
    { address: r.address, protocol: 'udp' as const, port: DEFAULT_DSTPORT },
    ...[r.gossipPort, r.admissionPort].filter(validPort).map((port) => ({ address: r.address, protocol: 'tcp' as const, port })),
    // SWIM datagrams share the gossip port number, over UDP.
    ...[r.gossipPort].filter(validPort).map((port) => ({ address: r.address, protocol: 'udp' as const, port })),
  ]);
  return { vteps: [...new Set(active.filter((r) => r.nodeId !== selfId).map((r) => r.address))].sort(), clusterPorts };
}

export interface HostGuardOptions {
  context: DataplaneContext;
  roster: Roster;
  selfId: string;
  /** The egress bridge's address (egressGateway). */
  gateway: string;
  /** The local sandboxes' egress ports and their own addresses. */
  pins: () => GuardPin[];
  logger: Logger;
}

export class HostGuard {
  readonly #o: HostGuardOptions;
  readonly #log: Logger;
  readonly #runs = new CoalescedRun(() => this.#run());
  /** What the next run must write: only the member sets, only the pins, or everything. */
  #pending = { members: false, pins: false, full: false };
  #timer: NodeJS.Timeout | undefined;
  #retry: NodeJS.Timeout | undefined;
  #unsubscribe: (() => void) | undefined;
  #stopped = false;

  constructor(options: HostGuardOptions) {
    this.#o = options;
    this.#log = options.logger.child({ component: 'host-guard' });
  }

  /** Writes both tables, then follows the roster and checks the kernel periodically. */
  async start(): Promise<void> {
    this.#unsubscribe = this.#o.roster.onChange(() => this.membersChanged());
    this.#timer = setInterval(() => void this.#check(), PERIODIC_CHECK_MS);
    this.#request('full');
    await this.#runs.settled();
  }

  desired(): HostGuardState {
    return { ...guardMembers(this.#o.roster.all(), this.#o.selfId), pins: this.#o.pins(), gateway: this.#o.gateway };
  }

  membersChanged(): void {
    this.#request('members');
  }

  /** Resolves once the pins are in the kernel (or the update failed and a retry is scheduled). */
  pinsChanged(): Promise<void> {
    this.#request('pins');
    return this.#runs.settled();
  }

  /** Resolves when no update is running or pending (tests). */
  settled(): Promise<void> {
    return this.#runs.settled();
  }

  async doctor(): Promise<Finding[]> {
    await this.#runs.settled();
    try {
      return (await inspectHostGuard(this.#o.context, this.desired())).map((problem) => ({
        subject: 'host guard', problem,
        hint: 'the agent rewrites its guard tables within 30 s; if this persists, look for host-guard errors in the agent log',
      }));
    } catch (error) {
      return [{ subject: 'host guard', problem: `cannot read the guard tables: ${(error as Error).message}`, hint: 'check that nft works on this host' }];
    }
  }

  #request(kind: 'members' | 'pins' | 'full'): void {
    if (this.#stopped) return;
    this.#pending[kind] = true;
    this.#runs.trigger();
  }

  async #run(): Promise<void> {
    const pending = this.#pending;
    this.#pending = { members: false, pins: false, full: false };
    if (this.#stopped || (!pending.members && !pending.pins && !pending.full)) return;
    const state = this.desired();
    try {
      if (pending.full) await applyHostGuard(this.#o.context, state);
      else {
        if (pending.members) await updateGuardMembers(this.#o.context, state);
        if (pending.pins) await updateGuardPins(this.#o.context, state);
      }
    } catch (error) {
      this.#log.error({ err: (error as Error).message }, 'cannot program the host guard; retrying');
      this.#retry ??= setTimeout(() => {
        this.#retry = undefined;
        this.#request('full');
      }, RETRY_MS);
    }
  }

  /** The periodic check: rewrites both tables only when the kernel holds something else. */
  async #check(): Promise<void> {
    await this.#runs.settled();
    if (this.#stopped) return;
    try {
      const problems = await inspectHostGuard(this.#o.context, this.desired());
      if (problems.length === 0) return;
      this.#log.warn({ problems: problems.slice(0, 10) }, 'the host guard tables differ from what they should be; rewriting them');
      this.#request('full');
    } catch (error) {
      this.#log.error({ err: (error as Error).message }, 'cannot read the host guard tables');
    }
  }

  /**
   * Stops following changes and resolves once a write under way has ended (it
   * may use the agent's nft workers, which close next). The tables stay:
   * sandboxes outlive an agent restart and stay guarded.
   */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#unsubscribe?.();
    if (this.#timer) clearInterval(this.#timer);
    if (this.#retry) clearTimeout(this.#retry);
    await this.#runs.settled();
    if (this.#retry) clearTimeout(this.#retry); // set by a write that failed while stopping
  }
}
