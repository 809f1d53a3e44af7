// A model of how the kernel applies the reconciler's operations, written from
// what was observed (docs/dataplane.md): a unicast VXLAN FDB entry has exactly
// one remote (`append` is ignored for unicast MACs), `replace` creates or
// overwrites, `delete` of a missing entry fails. Tests use it as the oracle for
// "applying diff(desired, actual) to actual yields desired" and as a fake kernel.
import type { FdbEntry, FdbOp, NeighbourEntry, NeighbourOp } from './diff.ts';

export class MissingEntryError extends Error {}

export function applyFdbOps(actual: readonly FdbEntry[], ops: readonly FdbOp[]): FdbEntry[] {
  const table = new Map(actual.map((e) => [e.mac, e] as const));
  for (const o of ops) {
    if (o.op === 'delete') {
      if (!table.delete(o.mac)) throw new MissingEntryError(`no FDB entry for ${o.mac}`);
    } else {
      // Both are rendered as `fdb replace`: create-or-overwrite, permanent, default port/VNI.
      table.set(o.mac, { mac: o.mac, vtep: o.vtep, permanent: true, overrides: false });
    }
  }
  return [...table.values()];
}

export function applyNeighbourOps(actual: readonly NeighbourEntry[], ops: readonly NeighbourOp[]): NeighbourEntry[] {
  const table = new Map(actual.map((e) => [e.ip, e] as const));
  for (const o of ops) {
    if (o.op === 'delete') {
      if (!table.delete(o.ip)) throw new MissingEntryError(`no neighbour entry for ${o.ip}`);
    } else {
      table.set(o.ip, { ip: o.ip, mac: o.mac, permanent: true });
    }
  }
  return [...table.values()];
}
