// The VXLAN device's forwarding database: MAC -> remote VTEP, read with
// `bridge -j fdb show` and written with `bridge -batch`.
import type { Runner } from './exec.ts';
import type { NetnsRef } from './netns.ts';
import type { FdbEntry, FdbOp } from './diff.ts';
import { runBatch } from './exec.ts';
import { inNetns, runJsonIn } from './netns.ts';
import { isUnicastMac } from './mac.ts';

interface RawFdb {
  mac?: string;
  ifname?: string;
  dst?: string;
  port?: number;
  vni?: number;
  via?: string;
  flags?: string[];
  master?: string;
  state?: string;
}

/**
 * Keeps only the entries the reconciler owns: `self` entries of the VXLAN
 * driver with a remote (dst) for a unicast MAC. Ignored, never deleted: the
 * bridge's own entries for its ports (`master br0 permanent`), what the bridge
 * learns on the vxlan port (`master br0`, dynamic), the all-zeros default
 * remote and multicast entries.
 */
export function parseFdb(raw: unknown, device: string): FdbEntry[] {
  if (!Array.isArray(raw)) throw new Error('bridge -j fdb show did not print a JSON array');
  const entries: FdbEntry[] = [];
  for (const e of raw as RawFdb[]) {
    if (typeof e.mac !== 'string' || typeof e.dst !== 'string') continue;
    if (e.ifname !== undefined && e.ifname !== device) continue; // "dev X" filtering omits ifname
    if (!(e.flags ?? []).includes('self') || e.master !== undefined) continue;
    const mac = e.mac.toLowerCase();
    if (!isUnicastMac(mac)) continue;
    entries.push({ mac, vtep: e.dst, permanent: e.state === 'permanent', overrides: e.port !== undefined || e.vni !== undefined || e.via !== undefined });
  }
  return entries;
}

export async function readFdb(runner: Runner, ref: NetnsRef, device: string): Promise<FdbEntry[]> {
  return parseFdb(await runJsonIn<unknown>(runner, ref, 'bridge', ['-j', 'fdb', 'show', 'dev', device]), device);
}

/**
 * Adds are written as `replace` too: create-or-overwrite cannot fail if an
 * entry appeared since the state was read, and it resets port/VNI overrides.
 */
export function fdbLines(ops: readonly FdbOp[], device: string): string[] {
  return ops.map((o) => o.op === 'delete'
    ? `fdb del ${o.mac} dev ${device} self`
    : `fdb replace ${o.mac} dev ${device} dst ${o.vtep} self permanent`);
}

export async function applyFdb(runner: Runner, ref: NetnsRef, device: string, ops: readonly FdbOp[]): Promise<void> {
  const [file, args] = inNetns(ref, 'bridge', []);
  await runBatch(runner, file, args, fdbLines(ops, device));
}
