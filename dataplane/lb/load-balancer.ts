// Keeps every sandbox's VIP load-balancing table equal to the desired state.
// The agent hands over the full desired state of all local sandboxes on every
// change; only sandboxes whose table differs from what was last applied are
// touched. When only backend sets changed (the common case: a task came or
// went), the worker rewrites just those service chains as raw netlink
// messages (~0.05 ms per namespace); anything else is an nft script, the whole
// table replaced in one transaction. All namespaces' updates go to the worker
// in one request.
import { netnsPath, describeNetns, type NetnsRef } from '../netns.ts';
import type { WorkerChange, WorkerItem } from './nft-worker.ts';
import { NftWorkerPool } from './nft-worker-pool.ts';
import { compareLb, desiredLbState, heldServices, parseLbListing } from './inspect.ts';
import { backendChanges, fullScript, incrementalScript, LB_TABLE, removeScript, renderLb, type LbService, type RenderedLb } from './ruleset.ts';

export interface SandboxLb {
  sandbox: NetnsRef;
  services: readonly LbService[];
  /**
   * Conntrack entries to delete once the table is updated: [VIP, protocol,
   * backend] selects the flows whose original destination is the VIP and whose
   * reply comes from the backend (the backend they were DNATed to).
   */
  dropFlows?: readonly ConntrackFlow[];
}

export type ConntrackFlow = readonly [vip: string, protocol: 'tcp' | 'udp', backend: string];

export interface LbApplyResult {
  /** Sandboxes whose table was written (or removed). */
  applied: number;
  unchanged: number;
  errors: { sandbox: string; error: string }[];
}

/** What a sandbox holds as far as this process knows: a table, or none. */
type Known = { rendered: RenderedLb } | { rendered: undefined };

export class LoadBalancer {
  readonly #worker: NftWorkerPool;
  /** Made here, so closed here; a pool passed in is its owner's to close. */
  readonly #ownsWorker: boolean;
  readonly #known = new Map<string, Known>();
  #workerGeneration = -1;

  constructor(options: { workers?: number; pool?: NftWorkerPool } = {}) {
    this.#worker = options.pool ?? new NftWorkerPool(options.workers);
    this.#ownsWorker = options.pool === undefined;
  }

  async apply(desired: readonly SandboxLb[]): Promise<LbApplyResult> {
    const result: LbApplyResult = { applied: 0, unchanged: 0, errors: [] };
    // A new worker may have replaced one that died mid-way: trust nothing remembered.
    if (this.#worker.generation !== this.#workerGeneration) this.#known.clear();
    const items: WorkerItem[] = [];
    const planned: { path: string; name: string; next: Known }[] = [];
    // Sandboxes on the same networks usually share one services array: render it, and
    // work out each distinct before -> after script, once per apply.
    const renders = new Map<readonly LbService[], Known | Error>();
    const changes = new Map<Known | undefined, Map<Known, WorkerChange | undefined>>();
    for (const { sandbox, services, dropFlows } of desired) {
      const path = netnsPath(sandbox);
      const next = memo(renders, services, () => renderKnown(services));
      if (next instanceof Error) {
        result.errors.push({ sandbox: describeNetns(sandbox), error: next.message });
        continue;
      }
      const known = this.#known.get(path);
      const change = memo(memo(changes, known, () => new Map<Known, WorkerChange | undefined>()), next, () => changeFor(known, next));
      const flows = dropFlows !== undefined && dropFlows.length > 0 ? dropFlows : undefined;
      if (change === undefined && flows === undefined) {
        result.unchanged++;
        continue;
      }
      // The worker deletes the flows after the table change: their next packet meets the new table.
      if (change === undefined) items.push({ netns: path, flows: flows! });
      else items.push(flows === undefined ? { netns: path, ...change } : { netns: path, ...change, flows });
      planned.push({ path, name: describeNetns(sandbox), next });
    }
    if (items.length === 0) return result;
    let replies;
    try {
      replies = await this.#worker.run(items);
    } catch (error) {
      for (const p of planned) result.errors.push({ sandbox: p.name, error: (error as Error).message });
      this.#known.clear();
      return result;
    }
    this.#workerGeneration = this.#worker.generation;
    planned.forEach((p, i) => {
      const reply = replies[i];
      if (reply?.ok) {
        this.#known.set(p.path, p.next);
        result.applied++;
      } else {
        this.#known.delete(p.path); // unknown state: the next apply rewrites it whole
        result.errors.push({ sandbox: p.name, error: reply && !reply.ok ? reply.error : 'no reply' });
      }
    });
    return result;
  }

  /**
   * Deletes conntrack entries in a sandbox outside a table change: flows another
   * table of the sandbox mapped (the ingress routing mesh's) to backends it no longer has.
   */
  async dropFlows(sandbox: NetnsRef, flows: readonly ConntrackFlow[]): Promise<void> {
    if (flows.length === 0) return;
    const [reply] = await this.#worker.run([{ netns: netnsPath(sandbox), flows }]);
    if (!reply?.ok) throw new Error(`cannot delete conntrack entries in ${describeNetns(sandbox)}: ${reply && !reply.ok ? reply.error : 'no reply'}`);
  }

  /** The sandbox is gone: drop what is known and the worker's cached context (an open netns handle). */
  forget(sandbox: NetnsRef): void {
    const path = netnsPath(sandbox);
    this.#known.delete(path);
    void this.#worker.run([{ netns: path, forget: true }]).catch(() => undefined);
  }

  /**
   * For `weft doctor`: each sandbox whose table differs from its desired
   * state, with the differences. Read-only.
   */
  async inspect(desired: readonly SandboxLb[]): Promise<{ sandbox: string; problems: string[] }[]> {
    const replies = await this.#worker.run(desired.map(({ sandbox }) => ({ netns: netnsPath(sandbox), list: LB_TABLE })));
    const found: { sandbox: string; problems: string[] }[] = [];
    desired.forEach(({ sandbox, services }, i) => {
      const reply = replies[i];
      let problems: string[];
      if (!reply?.ok) problems = [`cannot read its load-balancing table: ${reply && !reply.ok ? reply.error : 'no reply'}`];
      else {
        try {
          problems = compareLb(desiredLbState(services), reply.output ? parseLbListing(reply.output) : undefined);
        } catch (error) {
          problems = [`its load-balancing table is not in a form weft writes: ${(error as Error).message.split('\n')[0]}`];
        }
      }
      if (problems.length > 0) found.push({ sandbox: describeNetns(sandbox), problems });
    });
    return found;
  }

  /**
   * What each sandbox's table balances now, read from the kernel (no table:
   * none), by sandbox as describeNetns names it. A sandbox whose table cannot
   * be read or parsed is left out: nothing is known of it. Read-only.
   */
  async held(sandboxes: readonly NetnsRef[]): Promise<Map<string, LbService[]>> {
    const held = new Map<string, LbService[]>();
    if (sandboxes.length === 0) return held;
    const replies = await this.#worker.run(sandboxes.map((sandbox) => ({ netns: netnsPath(sandbox), list: LB_TABLE })));
    sandboxes.forEach((sandbox, i) => {
      const reply = replies[i];
      if (!reply?.ok) return;
      try {
        held.set(describeNetns(sandbox), reply.output ? heldServices(reply.output) : []);
      } catch {
        // not in a form weft writes: unknown, as if unreadable
      }
    });
    return held;
  }

  /** Forget what every sandbox holds: the next apply rewrites each table whole (repairs drift). */
  resync(): void {
    this.#known.clear();
  }

  get workerPids(): (number | undefined)[] {
    return this.#worker.pids;
  }

  close(): Promise<void> {
    return this.#ownsWorker ? this.#worker.close() : Promise.resolve();
  }
}

/** What turns `known` into `next`: nothing, the backend sets of some chains (the fast path), or an nft script. */
function changeFor(known: Known | undefined, next: Known): WorkerChange | undefined {
  if (next.rendered === undefined) {
    if (known !== undefined && known.rendered === undefined) return undefined;
    return { script: removeScript }; // also when unknown: a table left by an earlier agent goes
  }
  if (known?.rendered === undefined) return { script: fullScript(next.rendered) };
  const chains = backendChanges(known.rendered, next.rendered);
  if (chains !== undefined) return chains.length === 0 ? undefined : { table: LB_TABLE, chains };
  return { script: incrementalScript(known.rendered, next.rendered) ?? fullScript(next.rendered) };
}

function renderKnown(services: readonly LbService[]): Known | Error {
  try {
    // Services without ports balance nothing: no table (what doctor expects too).
    return { rendered: services.some((s) => s.ports.length > 0) ? renderLb(services) : undefined };
  } catch (error) {
    return error as Error;
  }
}

function memo<K, V>(map: Map<K, V>, key: K, make: () => V): V {
  if (map.has(key)) return map.get(key) as V;
  const value = make();
  map.set(key, value);
  return value;
}
