// Facts about the underlay, read in the caller's own (host) namespace.
import type { Runner } from './exec.ts';
import { runJson } from './exec.ts';
import { parseLinks } from './links.ts';
import type { LinkState } from './links.ts';

/**
 * The device the VXLAN traffic leaves through: the named one, or the one that
 * holds the VTEP address. Its MTU bounds the overlay MTU.
 */
export async function findUnderlay(runner: Runner, vtep: string, device: string | undefined): Promise<LinkState> {
  if (device !== undefined) {
    const links = parseLinks(await runJson<unknown>(runner, 'ip', ['-d', '-j', 'addr', 'show', 'dev', device]).catch((error: Error) => {
      throw new Error(`underlay device ${device} not found in this host namespace: ${error.message}`);
    }));
    const link = links[0];
    if (link === undefined) throw new Error(`underlay device ${device} not found in this host namespace`);
    return link;
  }
  const links = parseLinks(await runJson<unknown>(runner, 'ip', ['-d', '-j', '-4', 'addr', 'show']));
  const owner = links.find((l) => l.ipv4.some((a) => a.address === vtep));
  if (owner === undefined) {
    throw new Error(`VTEP address ${vtep} is not configured on any interface of this host namespace; VXLAN packets would have no source (check --advertise-addr)`);
  }
  return owner;
}
