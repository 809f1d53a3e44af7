// Neighbour (ARP) entries for remote endpoints: IP -> MAC on the VXLAN device.
// They live on the vxlan device, not the bridge, because with `proxy` the VXLAN
// driver answers an ARP request that reaches it from the bridge by looking the
// target up in *its own* neighbour table (arp_reduce in drivers/net/vxlan), and
// never sends the request over the underlay. An entry on the bridge would only
// serve the bridge's own IP stack (the gateway), not the sandboxes.
import type { Runner } from './exec.ts';
import type { NetnsRef } from './netns.ts';
import type { NeighbourEntry, NeighbourOp } from './diff.ts';
import { runBatch } from './exec.ts';
import { inNetns, runJsonIn } from './netns.ts';

interface RawNeighbour {
  dst?: string;
  dev?: string;
  lladdr?: string;
  state?: string[];
}

/** Every IPv4 entry on the device is the reconciler's: the vxlan device has no address, so the kernel never resolves through it by itself. */
export function parseNeighbours(raw: unknown, device: string): NeighbourEntry[] {
  if (!Array.isArray(raw)) throw new Error('ip -j neigh show did not print a JSON array');
  const entries: NeighbourEntry[] = [];
  for (const n of raw as RawNeighbour[]) {
    if (typeof n.dst !== 'string' || !n.dst.includes('.')) continue;
    if (n.dev !== undefined && n.dev !== device) continue;
    entries.push({ ip: n.dst, mac: n.lladdr?.toLowerCase(), permanent: (n.state ?? []).includes('PERMANENT') });
  }
  return entries;
}

export async function readNeighbours(runner: Runner, ref: NetnsRef, device: string): Promise<NeighbourEntry[]> {
  return parseNeighbours(await runJsonIn<unknown>(runner, ref, 'ip', ['-4', '-j', 'neigh', 'show', 'dev', device]), device);
}

/**
 * `ip neigh` exits the whole batch on its first error, even with -force, so
 * the lines that cannot fail (replace = create-or-overwrite) go first and the
 * deletes (which fail if the entry vanished meanwhile) last. (The agent's link
 * worker goes on after a failed line; the order costs it nothing.)
 */
export function neighbourLines(ops: readonly NeighbourOp[], device: string): string[] {
  const writes: string[] = [];
  const deletes: string[] = [];
  for (const o of ops) {
    if (o.op === 'delete') deletes.push(`neigh del ${o.ip} dev ${device}`);
    else writes.push(`neigh replace ${o.ip} lladdr ${o.mac} dev ${device} nud permanent`);
  }
  return [...writes, ...deletes];
}

export async function applyNeighbours(runner: Runner, ref: NetnsRef, device: string, ops: readonly NeighbourOp[]): Promise<void> {
  const [file, args] = inNetns(ref, 'ip', []);
  await runBatch(runner, file, args, neighbourLines(ops, device));
}
