// A private containerd for one lab host (docs/containers.md, "containerd"):
// CRI plugin disabled, own socket, root and state under the host's lab dir,
// started in the host's network namespace. Containers are run with
// `ctr run --cni` inside a private CNI view (cni-view.ts), so ctr finds the
// weft plugin and only the conflist the test gives it.
import { execa, type ResultPromise } from 'execa';
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { LabHost } from '../../deploy/lab/lab.ts';
import { isProcessAlive } from '../../lib/process-alive.ts';
import { busyboxOciArchive } from './busybox-image.ts';
import type { CniView } from './cni-view.ts';

/** Where containerd's runc shim keeps container state (machine-wide, one dir per ctr namespace). */
const RUNC_STATE = '/run/containerd/runc';

export const CTR_IMAGE = 'docker.io/library/weftbb:latest';

export interface LabContainerd {
  host: LabHost;
  root: string;
  socket: string;
  pid: number;
  log: string;
}

function config(root: string, socket: string): string {
  return `version = 2
root = "${join(root, 'root')}"
state = "${join(root, 'state')}"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "${socket}"
[ttrpc]
  address = "${socket}.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
`;
}

/** Starts the host's containerd, waits for it and imports the busybox image; throws with its log when it cannot. */
export async function startLabContainerd(host: LabHost): Promise<LabContainerd> {
  for (const tool of ['containerd', 'ctr', 'runc', 'containerd-shim-runc-v2', 'unshare', 'nsenter']) {
    if ((await execa('sh', ['-c', `command -v ${tool}`], { reject: false })).exitCode !== 0) throw new Error(`${tool} is not installed (deploy/install-deps.sh installs containerd and runc)`);
  }
  const root = join(host.dataDir, 'containerd');
  mkdirSync(root, { recursive: true });
  const cd: LabContainerd = { host, root, socket: join(root, 'c.sock'), pid: 0, log: join(root, 'containerd.log') };
  writeFileSync(join(root, 'config.toml'), config(root, cd.socket));
  const log = openSync(cd.log, 'a');
  const child = spawn('nsenter', [`--net=/run/netns/${host.netns}`, 'containerd', '--config', join(root, 'config.toml')], { detached: true, stdio: ['ignore', log, log] });
  child.unref();
  closeSync(log);
  cd.pid = child.pid ?? 0;
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if ((await ctrOn(cd, ['version'])).exitCode === 0) {
      const archive = await busyboxOciArchive(root, CTR_IMAGE);
      const imported = await ctrOn(cd, ['images', 'import', archive]);
      if (imported.exitCode !== 0) {
        await stopLabContainerd(cd);
        throw new Error(`ctr images import on ${host.name}: ${imported.stderr}`);
      }
      return cd;
    }
    if (!isProcessAlive(cd.pid)) break;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  const text = existsSync(cd.log) ? readFileSync(cd.log, 'utf8').split('\n').slice(-20).join('\n') : '';
  await stopLabContainerd(cd);
  throw new Error(`containerd of ${host.name} did not start:\n${text}`);
}

/**
 * ctr's namespace: the host's. runc keeps container state machine-wide under
 * /run/containerd/runc/<namespace>, so two containerds on one machine would
 * collide on the same container ID in the same namespace.
 */
const ctrArgs = (cd: LabContainerd): string[] => ['--address', cd.socket, '--namespace', cd.host.netns];

export function ctrOn(cd: LabContainerd, args: string[]) {
  return execa('ctr', [...ctrArgs(cd), ...args], { reject: false, timeout: 120_000 });
}

/**
 * `ctr run --rm --cni IMAGE ID CMD...` inside VIEW: ctr does the CNI ADD once
 * the task exists and the DEL after it exits. Returns the running ctr process.
 */
export function ctrRunCni(cd: LabContainerd, view: CniView, id: string, command: string[]): ResultPromise<{ reject: false; timeout: number }> {
  return execa(view.enter[0]!, [...view.enter.slice(1), 'ctr', ...ctrArgs(cd), 'run', '--rm', '--cni', CTR_IMAGE, id, ...command], { reject: false, timeout: 150_000 });
}

/** Kills every task, TERMs containerd, unmounts what is left under its root, removes the root. */
export async function stopLabContainerd(cd: LabContainerd): Promise<void> {
  const tasks = await ctrOn(cd, ['tasks', 'ls', '-q']);
  for (const id of String(tasks.stdout).split('\n').filter((l) => l !== '')) {
    await ctrOn(cd, ['tasks', 'kill', '-s', 'SIGKILL', id]);
    await ctrOn(cd, ['tasks', 'delete', '-f', id]);
  }
  if (cd.pid > 0 && isProcessAlive(cd.pid)) process.kill(cd.pid, 'SIGTERM');
  const deadline = Date.now() + 30_000;
  while (cd.pid > 0 && isProcessAlive(cd.pid) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 200));
  if (cd.pid > 0 && isProcessAlive(cd.pid)) process.kill(cd.pid, 'SIGKILL');
  const mounts = await execa('findmnt', ['-rn', '-o', 'TARGET'], { reject: false });
  for (const target of String(mounts.stdout).split('\n').filter((m) => m.startsWith(`${cd.root}/`)).reverse()) await execa('umount', ['-l', target], { reject: false });
  rmSync(cd.root, { recursive: true, force: true });
  // runc's per-namespace state dir outlives containerd; empty once every task is deleted.
  try {
    rmdirSync(join(RUNC_STATE, cd.host.netns));
  } catch {
    // not there (containerd never ran a task), or not empty: leave it for the eyes of whoever looks
  }
}
