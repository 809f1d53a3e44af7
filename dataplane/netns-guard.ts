// Which namespaces may be adopted as a sandbox (`weft attach --netns`, the
// API's attach request). A path is hostile input: the agent's own network
// namespace (the host's network), PID 1's, or one of the namespaces weft
// runs in or made for itself (a network's bridge and VXLAN device, a lab's
// hosts and switch) would put the host or weft's plumbing on an overlay.
// Namespaces are compared by identity (device and inode of the nsfs file),
// so no spelling of a path (/proc/PID/ns/net, a bind mount, a symlink) gets
// round it. weft's own are listed in INFRA_NETNS_DIR, one empty file per
// namespace name under /run/netns: there is no label on a namespace itself,
// and the names other agents on this machine (a lab) chose cannot be guessed.
import { closeSync, constants, mkdirSync, openSync, readdirSync, readFileSync, readlinkSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DataplaneContext } from './context.ts';
import { run } from './exec.ts';
import { describeNetns, NETNS_DIR, netnsPath, type NetnsRef } from './netns.ts';
import { validateNetnsName } from './names.ts';

export const INFRA_NETNS_DIR = '/run/weft/infra-netns';

interface Identity {
  dev: number;
  ino: number;
}

/** Records a namespace (a name under /run/netns) as weft's own: never adopted as a sandbox. */
export function markInfraNetns(name: string, dir = INFRA_NETNS_DIR): void {
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  writeFileSync(join(dir, validateNetnsName(name)), '');
}

export function unmarkInfraNetns(name: string, dir = INFRA_NETNS_DIR): void {
  rmSync(join(dir, validateNetnsName(name)), { force: true });
}

/** Forgets every mark whose name starts with `prefix` (a lab or a test going down). */
export function unmarkInfraNetnsWithPrefix(prefix: string, dir = INFRA_NETNS_DIR): void {
  for (const name of listDir(dir)) if (name.startsWith(prefix)) rmSync(join(dir, name), { force: true });
}

function listDir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/** Device and inode of a namespace file (a /run/netns entry, /proc/PID/ns/net); undefined if it cannot be read. */
export function identityOf(path: string): Identity | undefined {
  try {
    const s = statSync(path);
    return { dev: s.dev, ino: s.ino };
  } catch {
    return undefined;
  }
}

/**
 * The type of namespace a nsfs file is ("net", "mnt", "pid", ...), read from
 * the file system rather than by entering it with a command: adopting is on
 * every container start's path, and a spawn costs more than this whole check.
 * An open /proc/PID/ns/X names itself "net:[INODE]"; a bind mount of one (what
 * `ip netns add` and container runtimes make) shows the same as its root in
 * /proc/self/mountinfo. Undefined when neither says.
 */
export function namespaceKind(path: string): string | undefined {
  let fd: number | undefined;
  try {
    // Non-blocking: the path may have been swapped for a FIFO since it was checked, and opening a
    // FIFO for reading waits for a writer, which would stall the whole agent.
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
    const own = NAMESPACE_LINK.exec(readlinkSync(`/proc/self/fd/${fd}`));
    if (own) return own[1];
    const mountPoint = realpathSync(path);
    let kind: string | undefined;
    // The last mount on a path is the one that shows there.
    for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
      const [, , , root, point] = line.split(' ');
      if (point === mountPoint && line.includes(' - nsfs ')) kind = NAMESPACE_LINK.exec(root ?? '')?.[1];
    }
    return kind;
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

const NAMESPACE_LINK = /^([a-z_]+):\[\d+\]$/;

export const same = (a: Identity | undefined, b: Identity): boolean => a !== undefined && a.dev === b.dev && a.ino === b.ino;

/** Per runner: the namespace its commands run in never changes, so it is read once. */
const ownIdentities = new WeakMap<DataplaneContext['runner'], Identity>();

/**
 * The namespace the data plane's commands run in, as the runner sees it (the
 * agent's own; in tests, the emulated host's). Every nsfs file has the
 * device of this one, which tells a namespace from any other file.
 */
async function ownIdentity(ctx: DataplaneContext): Promise<Identity> {
  const known = ownIdentities.get(ctx.runner);
  if (known) return known;
  const out = await run(ctx.runner, 'stat', ['-L', '-c', '%d:%i', '/proc/self/ns/net']);
  const match = /^(\d+):(\d+)$/.exec(out.trim());
  if (!match) throw new Error(`cannot read the agent's own network namespace: stat printed ${JSON.stringify(out)}`);
  const identity = { dev: Number(match[1]), ino: Number(match[2]) };
  ownIdentities.set(ctx.runner, identity);
  return identity;
}

/** Throws, naming the problem, unless `ref` is a namespace that may become a sandbox. */
export async function refuseUnadoptable(ctx: DataplaneContext, ref: NetnsRef, infraDir = INFRA_NETNS_DIR): Promise<void> {
  const shown = describeNetns(ref);
  let target: Identity;
  try {
    const s = statSync(netnsPath(ref));
    target = { dev: s.dev, ino: s.ino };
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      throw new Error(`network namespace ${shown} does not exist (for a name, see \`ip netns list\`; for a path, use /proc/PID/ns/net of a process inside it)`);
    }
    throw new Error(`cannot inspect network namespace ${shown}: ${(error as Error).message}`);
  }
  const own = await ownIdentity(ctx);
  if (target.dev !== own.dev) throw new Error(`${shown} is not a namespace (a network namespace is /run/netns/NAME or /proc/PID/ns/net)`);
  const kind = namespaceKind(netnsPath(ref));
  if (kind !== 'net') throw new Error(`${shown} is not a network namespace (${kind === undefined ? 'the kernel does not name its type' : `it is a ${kind} namespace`}; for a path, use /proc/PID/ns/net)`);
  if (same(target, own)) throw new Error(`${shown} is the agent's own network namespace (the host's network): it cannot become a sandbox`);
  if (same(identityOf('/proc/1/ns/net'), target)) throw new Error(`${shown} is the network namespace of PID 1 (the host's network): it cannot become a sandbox`);
  const ownNetworks = listDir(NETNS_DIR).filter((n) => new RegExp(`^${escape(ctx.nsPrefix)}-n[1-9][0-9]*$`).test(n));
  for (const name of new Set([...ownNetworks, ...listDir(infraDir)])) {
    if (same(identityOf(join(NETNS_DIR, name)), target)) {
      throw new Error(`${shown} is weft's own namespace ${name} (a network's bridge and VXLAN device, or a lab host): it cannot become a sandbox`);
    }
  }
}

const escape = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
