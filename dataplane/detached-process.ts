// Starts a workload inside a named sandbox namespace, detached from the agent
// (weft run --detach). `ip netns exec` (not nsenter) because it also mounts
// /etc/netns/<name>/resolv.conf over /etc/resolv.conf for the command, which
// is how the workload finds the embedded resolver; the file must exist before
// this is called.
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { isProcessAlive } from '../lib/process-alive.ts';
import { identityOf, same } from './netns-guard.ts';

/** How long a workload gets to exit on SIGTERM before SIGKILL (docker stop gives 10 s). */
export const STOP_GRACE_MS = 5_000;

/** Returns the process ID (0 if it could not be started; `onError` says why). */
export function startDetachedIn(netnsName: string, command: readonly string[], logPath: string, onError: (error: Error) => void): number {
  if (command.length === 0) throw new Error('a detached sandbox command needs at least the program to run');
  const log = openSync(logPath, 'a', 0o600);
  try {
    const child = spawn('ip', ['netns', 'exec', netnsName, ...command], { detached: true, stdio: ['ignore', log, log] });
    child.unref();
    child.on('error', onError);
    return child.pid ?? 0;
  } finally {
    closeSync(log);
  }
}

/**
 * Stops a workload startDetachedIn started, when its sandbox goes: SIGTERM to
 * its process group (spawned detached, it leads one), SIGKILL to the group
 * after `graceMs`. Only a process still inside the sandbox's namespace is
 * signalled: after an agent restart the recorded pid may belong to someone
 * else by now. Call it while the namespace still exists.
 */
export async function stopDetachedIn(netnsName: string, pid: number, graceMs = STOP_GRACE_MS): Promise<'gone' | 'stopped' | 'killed'> {
  const home = identityOf(`/run/netns/${netnsName}`);
  if (pid <= 0 || home === undefined || !same(identityOf(`/proc/${pid}/ns/net`), home)) return 'gone';
  signalGroup(pid, 'SIGTERM');
  for (const deadline = Date.now() + graceMs; Date.now() < deadline;) {
    if (!isProcessAlive(pid)) return 'stopped';
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  signalGroup(pid, 'SIGKILL');
  return 'killed';
}

function signalGroup(leader: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-leader, signal);
  } catch {
    // the group is gone already
  }
}
