// The pure heart of the reconciler: desired remote endpoints versus what the
// kernel holds, as the smallest list of operations. No I/O, so it is unit- and
// property-tested against a model of the kernel (entry-model.ts).
import type { RemoteEndpoint } from './types.ts';
import { normalizeMac, isUnicastMac } from './mac.ts';
import { parseIPv4 } from '../lib/ipv4.ts';

/** A VXLAN FDB entry the reconciler owns: unicast MAC -> remote VTEP, on the vxlan device. */
export interface FdbEntry {
  mac: string;
  vtep: string;
  permanent: boolean;
  /** Carries its own port, VNI or outgoing device: not what the reconciler writes. */
  overrides: boolean;
}

/** An IPv4 neighbour entry on the vxlan device: IP -> MAC. */
export interface NeighbourEntry {
  ip: string;
  /** Absent for incomplete/failed entries. */
  mac: string | undefined;
  permanent: boolean;
}

export type FdbOp =
  | { op: 'add'; mac: string; vtep: string }
  | { op: 'replace'; mac: string; vtep: string }
  | { op: 'delete'; mac: string };

export type NeighbourOp =
  | { op: 'add'; ip: string; mac: string }
  | { op: 'replace'; ip: string; mac: string }
  | { op: 'delete'; ip: string };

export interface DesiredEntries {
  /** mac -> vtep */
  fdb: Map<string, string>;
  /** ip -> mac */
  neighbours: Map<string, string>;
}

export class DesiredStateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DesiredStateError';
  }
}

/**
 * Turns the endpoint list into the two entry maps, refusing contradictions (one
 * IP with two MACs, one MAC behind two VTEPs): picking one would be a decision,
 * and the data plane makes none. Exact duplicates are harmless and merged.
 */
export function desiredEntries(endpoints: readonly RemoteEndpoint[]): DesiredEntries {
  const fdb = new Map<string, string>();
  const neighbours = new Map<string, string>();
  const problems: string[] = [];
  for (const e of endpoints) {
    const mac = normalizeMac(e.mac);
    parseIPv4(e.ip);
    parseIPv4(e.vtep);
    if (!isUnicastMac(mac)) problems.push(`${e.ip}: MAC ${mac} is not a unicast address`);
    const vtep = fdb.get(mac);
    if (vtep !== undefined && vtep !== e.vtep) problems.push(`MAC ${mac} is behind both ${vtep} and ${e.vtep}`);
    const other = neighbours.get(e.ip);
    if (other !== undefined && other !== mac) problems.push(`IP ${e.ip} has both MAC ${other} and ${mac}`);
    fdb.set(mac, e.vtep);
    neighbours.set(e.ip, mac);
  }
  if (problems.length > 0) throw new DesiredStateError(`contradictory remote endpoints: ${problems.slice(0, 5).join('; ')}${problems.length > 5 ? ` (+${problems.length - 5} more)` : ''}`);
  return { fdb, neighbours };
}

export function fdbEntryIsRight(entry: FdbEntry, vtep: string | undefined): boolean {
  return entry.vtep === vtep && entry.permanent && !entry.overrides;
}

export function neighbourEntryIsRight(entry: NeighbourEntry, mac: string | undefined): boolean {
  return entry.mac === mac && entry.permanent;
}

/** Entries already right are not touched: a full reconcile at start-up leaves live traffic alone. */
export function diffFdb(desired: ReadonlyMap<string, string>, actual: readonly FdbEntry[]): FdbOp[] {
  const ops: FdbOp[] = [];
  const seen = new Set<string>();
  for (const entry of actual) {
    if (seen.has(entry.mac)) continue; // the kernel keeps one per unicast MAC; be safe anyway
    seen.add(entry.mac);
    const vtep = desired.get(entry.mac);
    if (vtep === undefined) ops.push({ op: 'delete', mac: entry.mac });
    else if (!fdbEntryIsRight(entry, vtep)) ops.push({ op: 'replace', mac: entry.mac, vtep });
  }
  for (const [mac, vtep] of desired) if (!seen.has(mac)) ops.push({ op: 'add', mac, vtep });
  return ops;
}

export function diffNeighbours(desired: ReadonlyMap<string, string>, actual: readonly NeighbourEntry[]): NeighbourOp[] {
  const ops: NeighbourOp[] = [];
  const seen = new Set<string>();
  for (const entry of actual) {
    if (seen.has(entry.ip)) continue;
    seen.add(entry.ip);
    const mac = desired.get(entry.ip);
    if (mac === undefined) ops.push({ op: 'delete', ip: entry.ip });
    else if (!neighbourEntryIsRight(entry, mac)) ops.push({ op: 'replace', ip: entry.ip, mac });
  }
  for (const [ip, mac] of desired) if (!seen.has(ip)) ops.push({ op: 'add', ip, mac });
  return ops;
}

export function countOps(ops: ReadonlyArray<{ op: 'add' | 'replace' | 'delete' }>): { added: number; removed: number; replaced: number } {
  const counts = { added: 0, removed: 0, replaced: 0 };
  for (const o of ops) {
    if (o.op === 'add') counts.added++;
    else if (o.op === 'delete') counts.removed++;
    else counts.replaced++;
  }
  return counts;
}
