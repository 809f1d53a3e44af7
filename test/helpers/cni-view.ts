// A private view of the machine's CNI directories for one container runtime
// command: /etc/cni/net.d holds only the conflist given, the weft plugin sits
// next to containernetworking-plugins in /usr/lib/cni (where Debian's ctr and
// podman look), and libcni's result cache (/var/lib/cni) is written to the
// view. Everything happens in a mount namespace of the command's own
// (`unshare -m`), with overlays over /etc, /var/lib and
// /usr/lib/cni whose upper layers live in the view's directory, so the
// machine's /etc/cni and /var/lib/cni are never touched. The mount namespace
// keeps the machine's propagation (`--propagation unchanged`) except on the
// root mount, made a slave first so the overlays on it stay inside: the
// /run/netns mount stays shared, so a network namespace the runtime mounts
// there (podman) is seen by the weft agent. The command runs in
// the lab host's network namespace, so plugins chained after weft (portmap)
// program that host, not the machine.
import { mkdirSync, readFileSync, existsSync, symlinkSync, writeFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import type { LabHost } from '../../deploy/lab/lab.ts';

const WEFT_CNI = fileURLToPath(new URL('../../bin/weft-cni', import.meta.url));
export const CNI_BIN_DIR = '/usr/lib/cni';

const ENTER = `set -e
view=$1; shift
mount --make-slave /
overlay() { mount -t overlay overlay -o "lowerdir=$1,upperdir=$view/$2/upper,workdir=$view/$2/work" "$1"; }
overlay /etc etc
overlay /var/lib varlib
overlay ${CNI_BIN_DIR} cnibin
mkdir -p /etc/cni/net.d
mount --bind "$view/net.d" /etc/cni/net.d
exec "$@"
`;

export interface CniView {
  dir: string;
  /** argv prefix that runs a command inside the view and the host's network namespace. */
  enter: string[];
}

/** Makes the view in DIR with CONFLIST as the only network configuration. */
export function makeCniView(dir: string, host: LabHost, conflist: object): CniView {
  if (!existsSync(join(CNI_BIN_DIR, 'loopback'))) throw new Error(`${CNI_BIN_DIR}/loopback is missing (deploy/install-deps.sh installs containernetworking-plugins)`);
  for (const layer of ['etc', 'varlib', 'cnibin']) for (const part of ['upper', 'work']) mkdirSync(join(dir, layer, part), { recursive: true });
  mkdirSync(join(dir, 'net.d'), { recursive: true });
  if (!existsSync(join(dir, 'cnibin', 'upper', 'weft'))) symlinkSync(WEFT_CNI, join(dir, 'cnibin', 'upper', 'weft'));
  writeFileSync(join(dir, 'net.d', '10-weft.conflist'), JSON.stringify(conflist, null, 1));
  writeFileSync(join(dir, 'enter.sh'), ENTER);
  return { dir, enter: ['unshare', '-m', '--propagation', 'unchanged', 'sh', join(dir, 'enter.sh'), dir, 'nsenter', `--net=/run/netns/${host.netns}`] };
}

/** The results libcni cached in the view (the runtime's ADD results, by file name). */
export function cachedResults(view: CniView): Record<string, { result?: unknown }> {
  const dir = join(view.dir, 'varlib', 'upper', 'cni', 'results');
  if (!existsSync(dir)) return {};
  return Object.fromEntries(readdirSync(dir).map((f) => [f, JSON.parse(readFileSync(join(dir, f), 'utf8')) as { result?: unknown }]));
}
