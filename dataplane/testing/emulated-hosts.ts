// Test and benchmark support, not used by the agent: N emulated hosts on this
// machine, each a network namespace with eth0 (198.18.0.K/15) on a bridge in a
// switch namespace, so that the data plane can be exercised between "hosts"
// without touching the machine's own interfaces. Every name starts with the
// caller's prefix; cleanup() removes everything with that prefix, including
// the namespaces the data plane made on the hosts (`${prefix}-hK-...`).
import { execa } from 'execa';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import type { Runner } from '../exec.ts';
import type { DataplaneContext } from '../context.ts';
import { processRunner } from '../exec.ts';
import { dataplaneContext } from '../context.ts';
import { ETC_NETNS } from '../resolv-conf.ts';
import { markInfraNetns, unmarkInfraNetnsWithPrefix } from '../netns-guard.ts';

export interface EmulatedHost {
  name: string;
  netns: string;
  /** Underlay address on eth0. */
  ip: string;
  /**
   * Runs commands inside the host namespace via nsenter, which switches the
   * network namespace only: `ip netns add` from there still pins namespaces
   * machine-wide, exactly as an agent started in the host namespace would.
   */
  runner: Runner;
  /** A data plane context for this host; its namespaces are named `${netns}-...`. */
  ctx: DataplaneContext;
}

export interface EmulatedHosts {
  prefix: string;
  hosts: EmulatedHost[];
  cleanup(): Promise<void>;
}

async function ip(...args: string[]): Promise<void> {
  const r = await execa('ip', args, { reject: false });
  if (r.exitCode !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr}`);
}

export function randomPrefix(tag = 'dp'): string {
  return `${tag}${Math.random().toString(36).slice(2, 8)}`;
}

export async function createEmulatedHosts(options: { prefix: string; hosts: number; mtu?: number }): Promise<EmulatedHosts> {
  const { prefix } = options;
  const mtu = String(options.mtu ?? 1500);
  const result: EmulatedHosts = { prefix, hosts: [], cleanup: () => removeEverything(prefix) };
  try {
    const sw = `${prefix}-sw`;
    markInfraNetns(sw);
    await ip('netns', 'add', sw);
    await ip('-n', sw, 'link', 'add', 'br0', 'mtu', mtu, 'type', 'bridge');
    await ip('-n', sw, 'link', 'set', 'br0', 'up');
    for (let i = 1; i <= options.hosts; i++) {
      const netns = `${prefix}-h${i}`;
      const address = `198.18.0.${i}`;
      markInfraNetns(netns);
      await ip('netns', 'add', netns);
      await ip('-n', netns, 'link', 'set', 'lo', 'up');
      await ip('-n', sw, 'link', 'add', `h${i}`, 'mtu', mtu, 'type', 'veth', 'peer', 'name', 'eth0', 'mtu', mtu, 'netns', netns);
      await ip('-n', sw, 'link', 'set', `h${i}`, 'master', 'br0', 'up');
      await ip('-n', netns, 'addr', 'add', `${address}/15`, 'dev', 'eth0');
      await ip('-n', netns, 'link', 'set', 'eth0', 'up');
      const runner = processRunner(['nsenter', `--net=/run/netns/${netns}`, '--']);
      result.hosts.push({ name: `h${i}`, netns, ip: address, runner, ctx: dataplaneContext({ nsPrefix: netns, runner }) });
    }
    return result;
  } catch (error) {
    await removeEverything(prefix);
    throw error;
  }
}

/** Kills what runs in the prefix's namespaces, deletes them, and their /etc/netns directories. */
export async function removeEverything(prefix: string): Promise<void> {
  const list = await execa('ip', ['-j', 'netns', 'list'], { reject: false });
  const names = (JSON.parse(list.stdout || '[]') as Array<{ name: string }>).map((n) => n.name).filter((n) => n.startsWith(`${prefix}-`));
  for (const name of names) {
    const pids = await execa('ip', ['netns', 'pids', name], { reject: false });
    for (const pid of pids.stdout.split('\n').map(Number).filter((p) => p > 0)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
  // Sandboxes and networks before the hosts and the switch (order does not matter to the kernel, but it keeps errors readable).
  for (const name of names.sort((a, b) => b.length - a.length)) await execa('ip', ['netns', 'delete', name], { reject: false });
  unmarkInfraNetnsWithPrefix(`${prefix}-`);
  if (existsSync(ETC_NETNS)) {
    for (const entry of readdirSync(ETC_NETNS)) if (entry.startsWith(`${prefix}-`)) rmSync(`${ETC_NETNS}/${entry}`, { recursive: true, force: true });
  }
}

/** Pings from inside a named namespace; resolves to ping's exit code and output (no throw). */
export async function pingFrom(netns: string, target: string, extra: readonly string[] = []): Promise<{ ok: boolean; output: string }> {
  const r = await execa('ip', ['netns', 'exec', netns, 'ping', '-n', '-c', '2', '-W', '1', '-i', '0.2', ...extra, target], { reject: false });
  return { ok: r.exitCode === 0, output: `${r.stdout}\n${r.stderr}`.trim() };
}
