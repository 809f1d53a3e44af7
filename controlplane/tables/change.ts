// What consumers (data plane, DNS, load balancer) see: changes of the
// *visible* view only. Tombstones, hidden entries of dead nodes and versions
// that lost a merge never reach them, so a consumer can apply changes
// blindly: every 'add' is new to it and every 'remove' names what to remove.

import { sameVersion } from './entry.ts';
import type { Entry } from './entry.ts';

export type ChangeOp = 'add' | 'update' | 'remove';

export interface Change {
  op: ChangeOp;
  table: string;
  key: string;
  /** The visible entry after the change; for 'remove', the entry that disappeared. */
  entry: Entry;
  /** For 'update', the visible entry it replaced. */
  previous?: Entry;
}

/**
 * Compares what a consumer saw before and after a mutation of one key.
 * Arguments are the visible entries (undefined when nothing was visible).
 */
export function visibleChange(before: Entry | undefined, after: Entry | undefined): Change | undefined {
  if (before === undefined && after === undefined) return undefined;
  if (before === undefined && after !== undefined) return { op: 'add', table: after.table, key: after.key, entry: after };
  if (before !== undefined && after === undefined) return { op: 'remove', table: before.table, key: before.key, entry: before };
  if (before === undefined || after === undefined || sameVersion(before, after)) return undefined;
  return { op: 'update', table: after.table, key: after.key, entry: after, previous: before };
}
