// Starts a workload inside a named sandbox namespace, detached from the agent
// (weft run --detach). `ip netns exec` (not nsenter) because it also mounts
// /etc/netns/<name>/resolv.conf over /etc/resolv.conf for the command, which
// is how the workload finds the embedded resolver; the file must exist before
// this is called.
import { spawn } from 'node:child_process';
import { closeSync, openSync, readdirSync } from 'node:fs';
import { identityOf, same } from './netns-guard.ts';
import { netnsByName, netnsPath } from './netns.ts';

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
 * Stops what runs in a sandbox weft made, when the sandbox goes: SIGTERM to
 * every process inside its network namespace now, SIGKILL to whatever is
 * still inside `graceMs` later (`stopped` resolves then). Processes are found
 * by namespace identity (/proc/PID/ns/net), not by the pid weft recorded: the
 * workload's children count too (also ones that ignore SIGTERM or left its
 * process group), and a recorded pid the kernel has reused elsewhere is never
 * hit. The identity is taken now, so the namespace's name may go meanwhile.
 * Returns how many processes got SIGTERM (0: nothing ran there).
 */
export function stopProcessesIn(netnsName: string, graceMs = STOP_GRACE_MS): { signalled: number; stopped: Promise<'stopped' | 'killed'> } {
  const home = identityOf(netnsPath(netnsByName(netnsName)));
  const inside = (): number[] => (home === undefined ? [] : processesIn(home));
  const first = inside();
  if (first.length === 0) return { signalled: 0, stopped: Promise.resolve('stopped') };
  for (const pid of first) signal(pid, 'SIGTERM');
  const stopped = (async (): Promise<'stopped' | 'killed'> => {
    for (const deadline = Date.now() + graceMs; Date.now() < deadline;) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      if (inside().length === 0) return 'stopped';
    }
    const left = inside();
    for (const pid of left) signal(pid, 'SIGKILL');
    return left.length === 0 ? 'stopped' : 'killed';
  })();
  return { signalled: first.length, stopped };
}

/** Every process whose network namespace is `home`. */
function processesIn(home: NonNullable<ReturnType<typeof identityOf>>): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(entry)) continue;
    if (same(identityOf(`/proc/${entry}/ns/net`), home)) pids.push(Number(entry));
  }
  return pids;
}

function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch {
    // gone already
  }
}
