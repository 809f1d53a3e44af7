// podman (CNI backend, runc) for one lab host (docs/containers.md, "podman"):
// a containers.conf of its own (CONTAINERS_CONF), private --root, --runroot
// and tmp dir under the host's lab dir, cgroupfs and file events, and every
// command run inside a private CNI view (cni-view.ts) in the host's network
// namespace, so podman reads the test's conflist and never the machine's.
// This machine lacks CAP_SYS_RESOURCE: containers get explicit ulimits.
import { execa } from 'execa';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { LabHost } from '../../deploy/lab/lab.ts';
import { busyboxOciArchive } from './busybox-image.ts';
import { CNI_BIN_DIR, type CniView } from './cni-view.ts';

export const PODMAN_IMAGE = 'localhost/weftbb:latest';
const ULIMITS = ['--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=4096:4096'];

export interface LabPodman {
  host: LabHost;
  root: string;
  view: CniView;
}

function containersConf(root: string): string {
  return `[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "${join(root, 'events.log')}"
tmp_dir = "${join(root, 'tmp')}"
[network]
network_backend = "cni"
cni_plugin_dirs = ["${CNI_BIN_DIR}"]
`;
}

export function podmanOn(p: LabPodman, args: string[], timeout = 150_000) {
  const [command, ...rest] = p.view.enter;
  return execa(command!, [...rest, 'podman', '--root', join(p.root, 'storage'), '--runroot', join(p.root, 'run'), '--storage-driver', 'vfs', ...args], {
    reject: false,
    timeout,
    env: { CONTAINERS_CONF: join(p.root, 'containers.conf') },
  });
}

/** `podman run --rm --network NET ...` with the ulimits this machine needs. */
export function podmanRun(p: LabPodman, network: string, args: string[]) {
  return podmanOn(p, ['run', '--rm', '--network', network, ...ULIMITS, ...args]);
}

/** Prepares podman for HOST with VIEW and loads the busybox image; throws with podman's message when it cannot. */
export async function startLabPodman(host: LabHost, view: CniView): Promise<LabPodman> {
  for (const tool of ['podman', 'conmon', 'runc']) {
    if ((await execa('sh', ['-c', `command -v ${tool}`], { reject: false })).exitCode !== 0) throw new Error(`${tool} is not installed (deploy/install-deps.sh installs podman and runc)`);
  }
  const root = join(host.dataDir, 'podman');
  mkdirSync(join(root, 'tmp'), { recursive: true });
  writeFileSync(join(root, 'containers.conf'), containersConf(root));
  const p: LabPodman = { host, root, view };
  const archive = await busyboxOciArchive(root, PODMAN_IMAGE);
  const loaded = await podmanOn(p, ['load', '-i', archive]);
  if (loaded.exitCode !== 0) throw new Error(`podman load on ${host.name}: ${String(loaded.stderr)}`);
  const tagged = await podmanOn(p, ['tag', String(loaded.stdout).match(/Loaded image: (\S+)/)?.[1] ?? PODMAN_IMAGE, PODMAN_IMAGE]);
  if (tagged.exitCode !== 0) throw new Error(`podman tag on ${host.name}: ${String(tagged.stderr)}`);
  return p;
}

/** Removes every container (podman runs the CNI DEL), then podman's storage and the root. */
export async function stopLabPodman(p: LabPodman): Promise<void> {
  await podmanOn(p, ['rm', '--all', '--force', '--time', '0'], 120_000);
  await podmanOn(p, ['system', 'reset', '--force'], 120_000);
  const mounts = await execa('findmnt', ['-rn', '-o', 'TARGET'], { reject: false });
  for (const target of String(mounts.stdout).split('\n').filter((m) => m.startsWith(`${p.root}/`)).reverse()) await execa('umount', ['-l', target], { reject: false });
  rmSync(p.root, { recursive: true, force: true });
}
