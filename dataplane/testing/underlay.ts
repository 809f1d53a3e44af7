// The emulated underlay shared by the lab (deploy/lab) and the data-plane
// tests and benchmarks: a switch namespace `<prefix>-sw` holding bridge br0,
// and per host a namespace `<prefix>-<name>` whose eth0 is a veth into br0.
// Nothing of the machine's own networking is touched. Every name starts with
// the caller's prefix, which is how removeNamespacesWithPrefix finds
// leftovers after a crash.
import { execa } from 'execa';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { ETC_NETNS } from '../resolv-conf.ts';
import { markInfraNetns, unmarkInfraNetnsWithPrefix } from '../netns-guard.ts';
import { processRunner, runBatch } from '../exec.ts';

/** Every emulated host's eth0 is in this prefix length (198.18.0.0/15). */
export const UNDERLAY_PREFIX_LENGTH = 15;

/** The underlay address of the host at `index` (0 for h1): 198.18.0.1 .. 198.18.0.254, then 198.18.1.x; the /15 has room for any lab. */
export function underlayAddress(index: number): string {
  return `198.18.${Math.floor(index / 254)}.${(index % 254) + 1}`;
}

export async function ip(...args: string[]): Promise<string> {
  const result = await execa('ip', args, { reject: false });
  if (result.exitCode !== 0) throw new Error(`ip ${args.join(' ')} failed: ${result.stderr.trim() || `exit ${result.exitCode}`}`);
  return result.stdout;
}

export function switchNamespace(prefix: string): string {
  return `${prefix}-sw`;
}

export async function createUnderlaySwitch(prefix: string, mtu: number): Promise<void> {
  const sw = switchNamespace(prefix);
  markInfraNetns(sw); // infrastructure: no agent adopts it as a sandbox
  await ip('netns', 'add', sw);
  await ip('-n', sw, 'link', 'set', 'lo', 'up');
  await ip('-n', sw, 'link', 'add', 'br0', 'mtu', String(mtu), 'type', 'bridge');
  await ip('-n', sw, 'link', 'set', 'br0', 'up');
}

/** Adds host `name` with `address` on its eth0; returns its namespace. Port `name` on the switch is its cable. */
export async function addUnderlayHost(prefix: string, name: string, address: string, mtu: number): Promise<string> {
  const [netns] = await addUnderlayHosts(prefix, [{ name, address }], mtu);
  return netns!;
}

/**
 * Adds every host at once; returns their namespaces in order. Three steps
 * whatever the count, each an `ip -batch` (one process, not one per command):
 * the namespaces, then every cable on the switch, then each host's own side
 * (one batch per host, run side by side: a batch runs in one namespace). A
 * 20-host lab took ~140 `ip` processes one after another before.
 */
export async function addUnderlayHosts(prefix: string, hosts: ReadonlyArray<{ name: string; address: string }>, mtu: number): Promise<string[]> {
  const sw = switchNamespace(prefix);
  const runner = processRunner();
  const netnsOf = (name: string): string => `${prefix}-${name}`;
  for (const host of hosts) markInfraNetns(netnsOf(host.name)); // a host: no agent (its own nor another's) adopts it as a sandbox
  await runBatch(runner, 'ip', [], hosts.map((h) => `netns add ${netnsOf(h.name)}`));
  await runBatch(runner, 'ip', ['-n', sw], hosts.flatMap((h) => [
    `link add ${h.name} mtu ${mtu} type veth peer name eth0 mtu ${mtu} netns ${netnsOf(h.name)}`,
    `link set ${h.name} master br0 up`,
  ]));
  await Promise.all(hosts.map((h) => runBatch(runner, 'ip', ['-n', netnsOf(h.name)], [
    'link set lo up',
    `addr add ${h.address}/${UNDERLAY_PREFIX_LENGTH} dev eth0`,
    'link set eth0 up',
  ])));
  return hosts.map((h) => netnsOf(h.name));
}

/** Cuts (up = false) or restores a host's cable: its port on the switch goes down or up. */
export async function setUnderlayCable(prefix: string, name: string, up: boolean): Promise<void> {
  await ip('-n', switchNamespace(prefix), 'link', 'set', name, up ? 'up' : 'down');
}

export async function listNamespacesWithPrefix(prefix: string): Promise<string[]> {
  const out = await ip('-json', 'netns', 'list').catch(() => '[]');
  const parsed = JSON.parse(out || '[]') as Array<{ name: string }>;
  return parsed.map((n) => n.name).filter((name) => name.startsWith(prefix + '-'));
}

/**
 * Kills whatever still runs in the prefix's namespaces (a hung agent, a
 * sandbox's process), deletes them, and removes their /etc/netns
 * directories, which outlive the namespaces when agents are killed.
 */
export async function removeNamespacesWithPrefix(prefix: string): Promise<void> {
  const names = await listNamespacesWithPrefix(prefix);
  for (const name of names) killProcessesIn(await ip('netns', 'pids', name).catch(() => ''));
  // Sandboxes and networks before the hosts and the switch: the order does not matter to the kernel, but it keeps errors readable.
  for (const name of names.sort((a, b) => b.length - a.length)) await ip('netns', 'delete', name).catch(() => undefined);
  unmarkInfraNetnsWithPrefix(`${prefix}-`);
  for (const entry of existsSync(ETC_NETNS) ? readdirSync(ETC_NETNS) : []) {
    if (entry.startsWith(`${prefix}-`)) rmSync(join(ETC_NETNS, entry), { recursive: true, force: true });
  }
}

function killProcessesIn(pidList: string): void {
  for (const pid of pidList.split('\n').map(Number).filter((p) => p > 0)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}
