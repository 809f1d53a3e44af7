// Every name the data plane gives the kernel. Namespace names are global to the
// machine (files under /run/netns), and the lab runs several agents on one
// machine, so each is built from a caller-supplied prefix. Interface names are
// per namespace but limited to 15 characters (IFNAMSIZ - 1).
import { createHash } from 'node:crypto';
import { INTERFACE_NAME, INTERFACE_NAME_RULE, namePattern } from '../lib/names.ts';

export const BRIDGE = 'br0';
export const VXLAN = 'vxlan0';
export const DEFAULT_DSTPORT = 4789;
/** IPv4 (20) + UDP (8) + VXLAN (8) + inner Ethernet (14) bytes of encapsulation. */
export const VXLAN_OVERHEAD = 50;

const PREFIX = namePattern(64);
const NETNS_NAME = namePattern(128);

export function validatePrefix(prefix: string): string {
  if (!PREFIX.pattern.test(prefix)) throw new Error(`namespace prefix "${prefix}" must be ${PREFIX.rule}`);
  return prefix;
}

export function validateNetnsName(name: string): string {
  if (!NETNS_NAME.pattern.test(name)) throw new Error(`network namespace name "${name}" must be ${NETNS_NAME.rule}`);
  return name;
}

export function validateIfName(name: string): string {
  if (!INTERFACE_NAME.test(name)) throw new Error(`interface name "${name}" must be ${INTERFACE_NAME_RULE}`);
  return name;
}

export function validateVni(vni: number): number {
  if (!Number.isInteger(vni) || vni < 1 || vni > 0xffffff) throw new Error(`VNI ${vni} must be an integer from 1 to 16777215`);
  return vni;
}

/** The namespace holding a network's bridge and VXLAN device on this host. */
export function networkNamespaceName(prefix: string, vni: number): string {
  return `${validatePrefix(prefix)}-n${validateVni(vni)}`;
}

/** A sandbox namespace the data plane creates itself (adopted ones keep their own name). */
export function sandboxNamespaceName(prefix: string, id: string): string {
  return validateNetnsName(`${validatePrefix(prefix)}-s${id}`);
}

/**
 * The network-side end of a sandbox's veth. It is derived from the pair
 * (sandbox, network) rather than chosen, so attach is idempotent and detach
 * finds it after an agent restart without any saved state. 'v' + 12 hex digits
 * fits 15 characters; 48 bits make a collision among one network's sandboxes
 * vanishingly unlikely.
 */
export function vethNameFor(sandboxKey: string, networkNetns: string): string {
  return 'v' + createHash('sha256').update(`${sandboxKey}\0${networkNetns}`).digest('hex').slice(0, 12);
}
