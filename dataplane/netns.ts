// Network namespaces, named (/run/netns/NAME, what `ip netns` manages) or
// adopted by path (/proc/PID/ns/net, a container runtime's bind mount).
import { existsSync, realpathSync } from 'node:fs';
import type { Runner } from './exec.ts';
import { run, runJson, CommandError } from './exec.ts';
import { validateNetnsName } from './names.ts';

export const NETNS_DIR = '/run/netns';

export type NetnsRef =
  | { readonly kind: 'name'; readonly name: string }
  | { readonly kind: 'path'; readonly path: string };

export function netnsByName(name: string): NetnsRef {
  return { kind: 'name', name: validateNetnsName(name) };
}

/**
 * The characters a namespace path may have: what runtimes use (/proc/PID/ns/net,
 * /var/run/netns/cni-UUID, /run/user/UID/netns/..., /var/run/docker/netns/ID).
 * The path goes into `ip -batch` lines, where `#` starts a comment and quotes
 * group words: neither may reach them.
 */
const NETNS_PATH = /^\/[A-Za-z0-9._/:@+-]*$/;

export function netnsByPath(path: string): NetnsRef {
  if (!NETNS_PATH.test(path)) throw new Error(`namespace path "${path}" must be absolute and made of letters, digits and . _ / : @ + - only`);
  return { kind: 'path', path };
}

/** A name if it has no '/', else a path: the rule iproute2 itself applies to `netns X`. */
export function netnsRef(nameOrPath: string): NetnsRef {
  return nameOrPath.includes('/') ? netnsByPath(nameOrPath) : netnsByName(nameOrPath);
}

export function netnsPath(ref: NetnsRef): string {
  return ref.kind === 'name' ? `${NETNS_DIR}/${ref.name}` : ref.path;
}

export function describeNetns(ref: NetnsRef): string {
  return ref.kind === 'name' ? ref.name : ref.path;
}

/**
 * The value for `ip link ... netns X`. iproute2 opens X as a path when it has a
 * '/', else as /run/netns/X, so both kinds work there.
 */
export function netnsArg(ref: NetnsRef): string {
  return ref.kind === 'name' ? ref.name : ref.path;
}

/**
 * argv for running `tool args` inside a namespace. `ip -n`/`bridge -n` accept
 * only names, so a path outside /run/netns goes through nsenter, which switches
 * the network namespace only (not the mount namespace, unlike `ip netns exec`).
 */
export function inNetns(ref: NetnsRef, tool: string, args: readonly string[]): [string, string[]] {
  const name = ref.kind === 'name' ? ref.name : namedAs(ref.path);
  if (name !== undefined && (tool === 'ip' || tool === 'bridge')) return [tool, ['-n', name, ...args]];
  return ['nsenter', [`--net=${netnsPath(ref)}`, '--', tool, ...args]];
}

/**
 * The `ip netns` name of a path under /run/netns (or /var/run/netns where that
 * is the same directory): containerd and podman hand the plugin such paths,
 * and `ip -n NAME` spares the nsenter process in front of every command.
 */
function namedAs(path: string): string | undefined {
  const match = /^(\/run|\/var\/run)\/netns\/([^/]+)$/.exec(path);
  if (!match || (match[1] === '/var/run' && !varRunIsRun())) return undefined;
  try {
    return validateNetnsName(match[2]!);
  } catch {
    return undefined;
  }
}

let varRunIsRunCache: boolean | undefined;
function varRunIsRun(): boolean {
  if (varRunIsRunCache === undefined) {
    try {
      varRunIsRunCache = realpathSync('/var/run') === '/run';
    } catch {
      varRunIsRunCache = false;
    }
  }
  return varRunIsRunCache;
}

export async function runIn(runner: Runner, ref: NetnsRef, tool: string, args: readonly string[]): Promise<string> {
  const [file, argv] = inNetns(ref, tool, args);
  return run(runner, file, argv);
}

export async function runJsonIn<T>(runner: Runner, ref: NetnsRef, tool: string, args: readonly string[]): Promise<T> {
  const [file, argv] = inNetns(ref, tool, args);
  return runJson<T>(runner, file, argv);
}

/** True when the namespace can be entered (a leftover empty file under /run/netns cannot). */
export async function netnsExists(runner: Runner, ref: NetnsRef): Promise<boolean> {
  try {
    await runIn(runner, ref, 'ip', ['-j', 'link', 'show', 'dev', 'lo']);
    return true;
  } catch (error) {
    if (error instanceof CommandError) return false;
    throw error;
  }
}

/**
 * Creates /run/netns/NAME unless it already works; brings lo up. A file that
 * exists but is not a namespace (its creator ran in a private mount namespace
 * that has since died) is removed first, or `ip netns add` would fail with
 * "File exists" forever.
 */
export async function ensureNamedNetns(runner: Runner, name: string): Promise<boolean> {
  const ref = netnsByName(name);
  if (await netnsExists(runner, ref)) return false;
  if (existsSync(netnsPath(ref))) await run(runner, 'ip', ['netns', 'delete', name]).catch(() => undefined);
  await run(runner, 'ip', ['netns', 'add', name]);
  await runIn(runner, ref, 'ip', ['link', 'set', 'dev', 'lo', 'up']);
  return true;
}

/** Deletes a named namespace; false if there was none. */
export async function deleteNamedNetns(runner: Runner, name: string): Promise<boolean> {
  validateNetnsName(name);
  // /run/netns is the list `ip netns list` prints (one mount, whatever network namespace the runner is in).
  if (!existsSync(netnsPath(netnsByName(name)))) return false;
  await run(runner, 'ip', ['netns', 'delete', name]);
  return true;
}

export async function listNamedNetns(runner: Runner, prefix: string): Promise<string[]> {
  const list = await runJson<Array<{ name: string }>>(runner, 'ip', ['-j', 'netns', 'list']);
  return list.map((n) => n.name).filter((n) => n.startsWith(prefix));
}
