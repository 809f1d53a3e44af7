// A named sandbox's resolv.conf. `ip netns exec NAME cmd` bind-mounts every
// file in /etc/netns/NAME/ over /etc/, so commands started that way resolve
// through it. Sandboxes adopted by path have no such name; their runtime owns
// their resolv.conf.
// weft's own files start with MARKER. A file without it (an administrator's,
// a runtime's), or anything that is not a plain file (a symlink could point
// anywhere on the host), is never written nor deleted: the caller is told
// and keeps the sandbox's own resolver, as Docker keeps a resolv.conf the
// user bind-mounted.
import { closeSync, constants, lstatSync, mkdirSync, openSync, readFileSync, readdirSync, rmdirSync, unlinkSync, writeSync, ftruncateSync } from 'node:fs';
import { join } from 'node:path';
import { validateNetnsName } from './names.ts';

export const ETC_NETNS = '/etc/netns';
export const RESOLV_CONF_MARKER = '# written by weft; rewritten when the sandbox is attached';

/** written: weft's file now has these lines; unchanged: it already had; foreign: a file weft did not write is there, left alone. */
export type ResolvConfResult = 'written' | 'unchanged' | 'foreign';

export function resolvConfPath(sandboxName: string, root = ETC_NETNS): string {
  return join(root, validateNetnsName(sandboxName), 'resolv.conf');
}

/** 'absent', 'weft' (a plain file starting with the marker, with its content) or 'foreign'. */
function ownerOf(path: string): { owner: 'absent' } | { owner: 'foreign' } | { owner: 'weft'; content: string } {
  let stat;
  try {
    stat = lstatSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { owner: 'absent' };
    throw error;
  }
  if (!stat.isFile()) return { owner: 'foreign' };
  const content = readFileSync(path, { encoding: 'utf8', flag: constants.O_RDONLY | constants.O_NOFOLLOW });
  return content.startsWith(RESOLV_CONF_MARKER + '\n') ? { owner: 'weft', content } : { owner: 'foreign' };
}

/**
 * Writes weft's file, unless a file weft did not write is there. Written in
 * place rather than renamed over: a process started with `ip netns exec`
 * sees the file through a bind mount of its inode, which a rename would leave
 * behind. O_NOFOLLOW (and O_EXCL for a new file): a symlink put there between
 * the check and the write is not followed.
 */
export function writeResolvConf(sandboxName: string, lines: readonly string[], root = ETC_NETNS): ResolvConfResult {
  for (const line of lines) if (/[\n\r]/.test(line)) throw new Error(`resolv.conf line contains a line break: ${JSON.stringify(line)}`);
  const path = resolvConfPath(sandboxName, root);
  const content = [RESOLV_CONF_MARKER, ...lines].join('\n') + '\n';
  const found = ownerOf(path);
  if (found.owner === 'foreign') return 'foreign';
  if (found.owner === 'weft' && found.content === content) return 'unchanged';
  mkdirSync(join(root, sandboxName), { recursive: true, mode: 0o755 });
  const flags = constants.O_WRONLY | constants.O_NOFOLLOW | (found.owner === 'absent' ? constants.O_CREAT | constants.O_EXCL : 0);
  const fd = openSync(path, flags, 0o644);
  try {
    ftruncateSync(fd, 0);
    writeSync(fd, content);
  } finally {
    closeSync(fd);
  }
  return 'written';
}

/** Removes the file if weft wrote it, and the directory if that leaves it empty; a foreign file stays. */
export function removeResolvConf(sandboxName: string, root = ETC_NETNS): boolean {
  const path = resolvConfPath(sandboxName, root);
  if (ownerOf(path).owner !== 'weft') return false;
  unlinkSync(path);
  const dir = join(root, sandboxName);
  if (readdirSync(dir).length === 0) rmdirSync(dir);
  return true;
}
