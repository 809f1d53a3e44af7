// A private dockerd for one lab host (docs/containers.md, "Docker"): in the
// host's network namespace and in its own mount namespace, where the host
// agent's plugin dir is bound over /run/docker/plugins, so several dockerds
// on one machine each find their own host's `weft` plugin. Own socket, roots
// and pidfile under the lab dir; no iptables, no bridge, no forwarding.
// The netns dir under its exec-root is a shared mount, so the container
// namespaces dockerd mounts there are visible to the agent (which runs in the
// machine's mount namespace).
import { execa } from 'execa';
import { busyboxRootfsTar } from './busybox-image.ts';
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { dockerPluginDir, type LabHost } from '../../deploy/lab/lab.ts';
import { isProcessAlive } from '../../lib/process-alive.ts';

/** The Debian docker.io client; /usr/local/bin may hold a newer one that warns about the old daemon. */
export const DOCKER = existsSync('/usr/bin/docker') ? '/usr/bin/docker' : 'docker';

export interface LabDocker {
  host: LabHost;
  root: string;
  socket: string;
  pid: number;
  log: string;
  extraArgs: readonly string[];
}

const START = `set -e
m=$(findmnt -n -o TARGET --target /run/docker/plugins)
# Only this namespace sees the bind: the mount holding /run/docker/plugins stops propagating out.
mount --make-slave "$m"
mount --bind "$1" /run/docker/plugins
shift
exec "$@"
`;

/** Starts the host's dockerd (with `extraArgs`, e.g. --dns) and waits for it; throws with its log when it cannot start. */
export async function startLabDocker(host: LabHost, extraArgs: readonly string[] = []): Promise<LabDocker> {
  for (const tool of ['dockerd', 'unshare', 'findmnt']) {
    if ((await execa('sh', ['-c', `command -v ${tool}`], { reject: false })).exitCode !== 0) throw new Error(`${tool} is not installed (deploy/install-deps.sh installs docker.io)`);
  }
  const root = join(host.dataDir, 'docker');
  const exec = join(root, 'exec');
  mkdirSync(join(exec, 'netns'), { recursive: true });
  mkdirSync(dockerPluginDir(host), { recursive: true });
  mkdirSync('/run/docker/plugins', { recursive: true });
  // Bound once per root: a restart (restartLabDocker) finds it mounted already.
  if ((await execa('mountpoint', ['-q', join(exec, 'netns')], { reject: false })).exitCode !== 0) {
    await execa('mount', ['--bind', join(exec, 'netns'), join(exec, 'netns')]);
    await execa('mount', ['--make-shared', join(exec, 'netns')]);
  }
  const script = join(root, 'start.sh');
  writeFileSync(script, START);
  const docker: LabDocker = { host, root, socket: join(root, 'docker.sock'), pid: 0, log: join(root, 'dockerd.log'), extraArgs };
  const log = openSync(docker.log, 'a');
  const child = spawn('unshare', ['-m', '--propagation', 'unchanged', 'sh', script, dockerPluginDir(host),
    'nsenter', `--net=/run/netns/${host.netns}`, 'dockerd', '-H', `unix://${docker.socket}`, '--pidfile', join(root, 'dockerd.pid'),
    '--exec-root', exec, '--data-root', join(root, 'data'), '--iptables=false', '--ip6tables=false', '--bridge=none',
    '--ip-forward=false', '--ip-masq=false', ...extraArgs], { detached: true, stdio: ['ignore', log, log] });
  child.unref();
  closeSync(log);
  docker.pid = child.pid ?? 0;
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if ((await dockerOn(docker, ['version', '--format', '{{.Server.Version}}'])).exitCode === 0) return docker;
    if (!isProcessAlive(docker.pid)) break;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  const text = existsSync(docker.log) ? readFileSync(docker.log, 'utf8').split('\n').slice(-20).join('\n') : '';
  await stopLabDocker(docker);
  throw new Error(`dockerd of ${host.name} did not start:\n${text}`);
}

export function dockerOn(docker: LabDocker, args: string[]) {
  return execa(DOCKER, ['-H', `unix://${docker.socket}`, ...args], { reject: false, timeout: 120_000 });
}

/** A busybox image built from busybox-static (no registry). */
export async function importBusybox(docker: LabDocker, tag = 'weftbb:latest'): Promise<string> {
  const r = await dockerOn(docker, ['import', await busyboxRootfsTar(docker.root), tag]);
  if (r.exitCode !== 0) throw new Error(`docker import: ${r.stderr}`);
  return tag;
}

/** TERM and wait (it stops its containers), then start it again on the same roots: a dockerd restart. */
export async function restartLabDocker(docker: LabDocker): Promise<LabDocker> {
  await terminate(docker);
  return startLabDocker(docker.host, docker.extraArgs);
}

/** TERM, wait (it stops its containers and containerd), unmount the shared netns dir, remove the roots. */
export async function stopLabDocker(docker: LabDocker): Promise<void> {
  await terminate(docker);
  await execa('umount', ['-R', join(docker.root, 'exec', 'netns')], { reject: false });
  rmSync(docker.root, { recursive: true, force: true });
}

async function terminate(docker: LabDocker): Promise<void> {
  const pidFile = join(docker.root, 'dockerd.pid');
  const pid = existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8').trim()) : docker.pid;
  if (pid > 0 && isProcessAlive(pid)) process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + 30_000;
  while (pid > 0 && isProcessAlive(pid) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 200));
  if (pid > 0 && isProcessAlive(pid)) process.kill(pid, 'SIGKILL');
}
