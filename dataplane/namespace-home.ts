// Where named namespaces live. `ip netns add` pins a namespace by bind-mounting
// it on /run/netns/NAME. A process started with `ip netns exec` (or by a
// systemd unit with PrivateTmp/ProtectSystem) runs in a *slave* copy of the
// mount namespace: mounts flow into it but not out of it. Namespaces it creates
// then exist only for it and its children: other processes see an empty file,
// and when it exits the mount (and the namespace, if nothing runs in it) is
// gone, which would drop every sandbox's traffic on an agent restart.
import { readFileSync } from 'node:fs';

export interface NamespaceHomeProblem {
  problem: string;
  hint: string;
}

/** Looks at /proc/self/mountinfo; undefined when namespaces made here are visible machine-wide. */
export function checkNamespaceHome(mountinfo?: string): NamespaceHomeProblem | undefined {
  const text = mountinfo ?? readFileSync('/proc/self/mountinfo', 'utf8');
  const mount = mountFor('/run/netns', text);
  if (mount === undefined) return undefined;
  if (mount.optional.some((f) => f.startsWith('master:'))) {
    return {
      problem: `this process runs in a private (slave) mount namespace (${mount.mountPoint} is "${mount.optional.join(' ')}"): network namespaces it creates under /run/netns are invisible to other processes and vanish when it exits`,
      hint: 'start the agent in the host namespace with `nsenter --net=/run/netns/HOST -- ...` (network namespace only) instead of `ip netns exec HOST ...`, and not from a systemd unit with PrivateTmp/ProtectSystem/PrivateMounts',
    };
  }
  return undefined;
}

interface MountEntry {
  mountPoint: string;
  optional: string[];
}

/** The mount that holds `path`: the longest mount point that is a prefix of it; the last one listed wins (it is on top). */
function mountFor(path: string, mountinfo: string): MountEntry | undefined {
  let best: MountEntry | undefined;
  for (const line of mountinfo.split('\n')) {
    const fields = line.split(' ');
    const separator = fields.indexOf('-');
    if (fields.length < 7 || separator < 6) continue;
    const mountPoint = fields[4]!.replace(/\\040/g, ' ');
    const covers = mountPoint === '/' || path === mountPoint || path.startsWith(mountPoint + '/');
    if (!covers) continue;
    if (best === undefined || mountPoint.length >= best.mountPoint.length) best = { mountPoint, optional: fields.slice(6, separator) };
  }
  return best;
}
