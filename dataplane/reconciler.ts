// Makes each network's FDB and neighbour entries exactly the desired remote
// endpoints: read the kernel (JSON), diff, apply only the difference in one
// batch per entry group. Used at start-up (entries already right are left
// alone, so an agent restart drops no traffic), after changes, and
// periodically to repair drift.
import type { DataplaneContext } from './context.ts';
import type { Counts, NetworkEndpoints } from './types.ts';
import type { FdbEntry, FdbOp, NeighbourEntry, NeighbourOp } from './diff.ts';
import { CommandError } from './exec.ts';
import { VXLAN, networkNamespaceName } from './names.ts';
import { netnsByName } from './netns.ts';
import { countOps, desiredEntries, diffFdb, diffNeighbours } from './diff.ts';
import { applyFdb, readFdb } from './fdb.ts';
import { applyNeighbours, readNeighbours } from './neighbours.ts';
import { applyFdbOps, applyNeighbourOps } from './entry-model.ts';
import type { KnownEntries } from './known-entries.ts';

export interface NetworkReconcileResult extends Counts {
  vni: number;
  netns: string;
  fdb: Counts;
  neighbours: Counts;
  /** Entry groups (fdb, neighbours) whose first batch failed and were re-read and applied again. */
  retries: number;
  /** True when the diff was made against `known` instead of a kernel read. */
  fromKnown: boolean;
  /** Set when the network could not be brought to the desired state; its counts are what was attempted. */
  error?: string;
}

export interface ReconcileResult extends Counts {
  networks: NetworkReconcileResult[];
  /** One line per network that failed; the others were still reconciled. */
  errors: string[];
}

export interface ReconcileOptions {
  /** Networks reconciled at once (each costs 2-4 short process spawns). Default 4. */
  concurrency?: number;
  /** What earlier runs left in the kernel; kept current by every run given it (known-entries.ts). */
  known?: KnownEntries;
  /**
   * Diff against `known` where it holds the network, without reading the
   * kernel (change-driven runs). Default false: read, as start-up, periodic
   * and repair runs must.
   */
  fromKnown?: boolean;
}

const ZERO: Counts = { added: 0, removed: 0, replaced: 0 };

/**
 * Reconciles the networks listed (others are not touched). Counts are kernel
 * entries: a new remote endpoint is 1 FDB + 1 neighbour entry = 2 added. A
 * network with an empty endpoint list loses all its entries.
 */
export async function reconcile(ctx: DataplaneContext, desired: readonly NetworkEndpoints[], options: ReconcileOptions = {}): Promise<ReconcileResult> {
  const results: NetworkReconcileResult[] = new Array(desired.length);
  let next = 0;
  const worker = async () => {
    while (next < desired.length) {
      const index = next++;
      results[index] = await reconcileNetwork(ctx, desired[index]!, options);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(options.concurrency ?? 4, desired.length)) }, worker));
  const total = { ...ZERO };
  for (const r of results) add(total, r);
  return { ...total, networks: results, errors: results.filter((r) => r.error !== undefined).map((r) => `VNI ${r.vni} (${r.netns}): ${r.error}`) };
}

export async function reconcileNetwork(ctx: DataplaneContext, want: NetworkEndpoints, options: Pick<ReconcileOptions, 'known' | 'fromKnown'> = {}): Promise<NetworkReconcileResult> {
  const netns = networkNamespaceName(ctx.nsPrefix, want.vni);
  const known = options.known;
  const before = options.fromKnown ? known?.get(netns) : undefined;
  const result: NetworkReconcileResult = { vni: want.vni, netns, ...ZERO, fdb: { ...ZERO }, neighbours: { ...ZERO }, retries: 0, fromKnown: before !== undefined };
  const ref = netnsByName(netns);
  // Forgotten until this run has succeeded: a failure or a crash half-way leaves the next run to read the kernel.
  known?.forget(netns);
  try {
    const desired = desiredEntries(want.endpoints);
    const [fdbNow, neighNow] = before !== undefined ? [before.fdb, before.neighbours]
      : await Promise.all([readFdb(ctx.runner, ref, VXLAN), readNeighbours(ctx.runner, ref, VXLAN)]);
    // FDB first: a neighbour entry without its FDB entry would answer ARP for
    // a MAC that cannot be reached yet.
    const errors: string[] = [];
    const fdbAfter = await group<FdbEntry, FdbOp>(fdbNow, (actual) => diffFdb(desired.fdb, actual), () => readFdb(ctx.runner, ref, VXLAN),
      (ops) => applyFdb(ctx.runner, ref, VXLAN, ops), applyFdbOps, result.fdb, result, errors, 'FDB');
    const neighAfter = await group<NeighbourEntry, NeighbourOp>(neighNow, (actual) => diffNeighbours(desired.neighbours, actual), () => readNeighbours(ctx.runner, ref, VXLAN),
      (ops) => applyNeighbours(ctx.runner, ref, VXLAN, ops), applyNeighbourOps, result.neighbours, result, errors, 'neighbours');
    if (errors.length > 0) result.error = errors.join('; ');
    else if (fdbAfter !== undefined && neighAfter !== undefined) known?.remember(netns, { fdb: fdbAfter, neighbours: neighAfter });
  } catch (error) {
    result.error = explain(error, netns);
  }
  add(result, result.fdb);
  add(result, result.neighbours);
  return result;
}

/**
 * One entry group: diff and apply; if the batch fails (an entry changed under
 * us, a line was refused, or the known entries were wrong), re-read and apply
 * the new difference once more. Counts are those of the first diff: with the
 * retry succeeding, that is what changed relative to the state first read.
 * Returns what the kernel holds afterwards (the kernel model applied to what
 * was diffed), undefined when the group failed.
 */
async function group<E, O extends { op: 'add' | 'replace' | 'delete' }>(
  actual: readonly E[], diff: (actual: readonly E[]) => O[], reread: () => Promise<E[]>, apply: (ops: readonly O[]) => Promise<void>,
  model: (actual: readonly E[], ops: readonly O[]) => E[], counts: Counts, result: NetworkReconcileResult, errors: string[], what: string,
): Promise<E[] | undefined> {
  const ops = diff(actual);
  Object.assign(counts, countOps(ops));
  if (ops.length === 0) return [...actual];
  try {
    await apply(ops);
    return modelled(model, actual, ops);
  } catch (first) {
    if (!(first instanceof CommandError)) throw first;
    result.retries++;
    try {
      const now = await reread();
      const again = diff(now);
      await apply(again);
      return modelled(model, now, again);
    } catch (second) {
      errors.push(`${what}: ${(second as Error).message} (first attempt: ${(first as Error).message.split('\n')[0]})`);
      return undefined;
    }
  }
}

/** The kernel model's idea of the result; undefined (read next time) should it disagree with what was applied. */
function modelled<E, O>(model: (actual: readonly E[], ops: readonly O[]) => E[], actual: readonly E[], ops: readonly O[]): E[] | undefined {
  try {
    return model(actual, ops);
  } catch {
    return undefined;
  }
}

function explain(error: unknown, netns: string): string {
  const message = (error as Error).message ?? String(error);
  if (/Cannot open network namespace|setting the network namespace/.test(message)) {
    return `network namespace ${netns} does not exist; ensureNetwork() must run before reconcile (${message.split('\n')[0]})`;
  }
  if (/does not exist|Cannot find device/.test(message)) return `the VXLAN device is missing in ${netns}; run ensureNetwork() again (${message.split('\n')[0]})`;
  return message;
}

function add(into: Counts, from: Counts): void {
  into.added += from.added;
  into.removed += from.removed;
  into.replaced += from.replaced;
}
