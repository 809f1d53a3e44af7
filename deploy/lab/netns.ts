// Thin wrappers over `ip` for the lab's namespaces. Every name the lab makes
// starts with its prefix, which is how `lab down` finds leftovers after a crash.
import { execa } from 'execa';

export async function ip(...args: string[]): Promise<string> {
  const result = await execa('ip', args, { reject: false });
  if (result.exitCode !== 0) throw new Error(`ip ${args.join(' ')} failed: ${result.stderr.trim() || `exit ${result.exitCode}`}`);
  return result.stdout;
}

export async function listNamespaces(prefix: string): Promise<string[]> {
  const out = await ip('-json', 'netns', 'list').catch(() => '[]');
  const parsed = JSON.parse(out || '[]') as Array<{ name: string }>;
  return parsed.map((n) => n.name).filter((name) => name.startsWith(prefix + '-'));
}

/** Kills every process still running inside a namespace, then deletes it. */
export async function destroyNamespace(name: string): Promise<void> {
  const pids = (await ip('netns', 'pids', name).catch(() => '')).split('\n').map(Number).filter((p) => p > 0);
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  await ip('netns', 'delete', name).catch(() => undefined);
}
