// A named sandbox's resolv.conf. `ip netns exec NAME cmd` bind-mounts every
// file in /etc/netns/NAME/ over /etc/, so commands started that way resolve
// through it. Sandboxes adopted by path have no such name; their runtime owns
// their resolv.conf.
import { existsSync, mkdirSync, readFileSync, rmdirSync, unlinkSync, writeFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { validateNetnsName } from './names.ts';

export const ETC_NETNS = '/etc/netns';
const MARKER = '# written by weft; rewritten when the sandbox is attached';

export function resolvConfPath(sandboxName: string, root = ETC_NETNS): string {
  return join(root, validateNetnsName(sandboxName), 'resolv.conf');
}

/**
 * Writes the file; returns false when it already had this content. Written in
 * place rather than renamed over: a process started with `ip netns exec` sees
 * the file through a bind mount of its inode, which a rename would leave behind.
 */
export function writeResolvConf(sandboxName: string, lines: readonly string[], root = ETC_NETNS): boolean {
  for (const line of lines) if (/[\n\r]/.test(line)) throw new Error(`resolv.conf line contains a line break: ${JSON.stringify(line)}`);
  const path = resolvConfPath(sandboxName, root);
  const content = [MARKER, ...lines].join('\n') + '\n';
  if (existsSync(path) && readFileSync(path, 'utf8') === content) return false;
  mkdirSync(join(root, sandboxName), { recursive: true, mode: 0o755 });
  writeFileSync(path, content, { mode: 0o644 });
  return true;
}

/** Removes the file if weft wrote it, and the directory if that leaves it empty. */
export function removeResolvConf(sandboxName: string, root = ETC_NETNS): boolean {
  const path = resolvConfPath(sandboxName, root);
  if (!existsSync(path) || !readFileSync(path, 'utf8').startsWith(MARKER)) return false;
  unlinkSync(path);
  const dir = join(root, sandboxName);
  if (readdirSync(dir).length === 0) rmdirSync(dir);
  return true;
}
