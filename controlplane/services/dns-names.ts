// The name forms of the cluster domain (docs/dns.md), as plain string
// functions. Names arrive lowercased and without the trailing dot.

export interface SrvName {
  /** What the SRV name is about: `<service>`, `tasks.<service>`, optionally `.<network>`. */
  base: string;
  protocol: 'tcp' | 'udp';
  /** `_<port>._<proto>.<base>`; undefined for `_<proto>.<base>`. */
  port?: number;
  /** `_<label>._<proto>.<base>` with a label that is not a port number (RFC 2782 service names): no records. */
  unknownLabel?: boolean;
}

export function normalise(name: string): string {
  const lower = name.toLowerCase();
  return lower.endsWith('.') ? lower.slice(0, -1) : lower;
}

/** `_<proto>.<base>` or `_<port|label>._<proto>.<base>`; undefined for any other name. */
export function srvName(name: string): SrvName | undefined {
  if (!name.startsWith('_')) return undefined;
  const labels = name.split('.');
  let first = 0;
  let port: number | undefined;
  let unknownLabel = false;
  if (labels[1]?.startsWith('_')) {
    const label = labels[0]!.slice(1);
    if (/^[1-9]\d{0,4}$/.test(label) && Number(label) <= 65_535) port = Number(label);
    else unknownLabel = true;
    first = 1;
  }
  const proto = labels[first];
  if ((proto !== '_tcp' && proto !== '_udp') || labels.length <= first + 1) return undefined;
  return {
    base: labels.slice(first + 1).join('.'),
    protocol: proto === '_tcp' ? 'tcp' : 'udp',
    ...(port === undefined ? {} : { port }),
    ...(unknownLabel ? { unknownLabel } : {}),
  };
}

/** The per-task label in `<label>.tasks.<service>`: the IP with dashes (Kubernetes style, never ambiguous). */
export function taskLabel(ip: string): string {
  return ip.replaceAll('.', '-');
}

/**
 * The cluster's own names, never forwarded: one label, `tasks.<label>` and
 * anything under it, anything under an attached network's name, and the SRV
 * forms of those. Everything else belongs to the upstream resolvers.
 */
export function inClusterDomain(name: string, networkNames: readonly string[]): boolean {
  const labels = name.split('.');
  while (labels.length > 1 && labels[0]!.startsWith('_')) labels.shift();
  if (labels.length === 1) return true;
  if (labels.length >= 2 && labels[labels.length - 2] === 'tasks' && labels.length <= 3) return true;
  const last = labels[labels.length - 1]!;
  return networkNames.some((n) => n.toLowerCase() === last);
}
