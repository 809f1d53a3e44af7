// Starts a workload inside a named sandbox namespace, detached from the agent
// (weft run --detach). `ip netns exec` (not nsenter) because it also mounts
// /etc/netns/<name>/resolv.conf over /etc/resolv.conf for the command, which
// is how the workload finds the embedded resolver; the file must exist before
// this is called.
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';

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
