// Test and benchmark support, not used by the agent: N emulated hosts on this
// machine, each a network namespace with eth0 (198.18.0.K/15) on a bridge in a
// switch namespace, so that the data plane can be exercised between "hosts"
// without touching the machine's own interfaces. Every name starts with the
// caller's prefix; cleanup() removes everything with that prefix, including
// the namespaces the data plane made on the hosts (`${prefix}-hK-...`).
import { execa } from 'execa';
import type { Runner } from '../exec.ts';
import type { DataplaneContext } from '../context.ts';
import { processRunner } from '../exec.ts';
import { dataplaneContext } from '../context.ts';
import { addUnderlayHosts, createUnderlaySwitch, removeNamespacesWithPrefix, underlayAddress } from './underlay.ts';

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

export function randomPrefix(tag = 'dp'): string {
  return `${tag}${Math.random().toString(36).slice(2, 8)}`;
}

export async function createEmulatedHosts(options: { prefix: string; hosts: number; mtu?: number }): Promise<EmulatedHosts> {
  const { prefix } = options;
  const mtu = options.mtu ?? 1500;
  const result: EmulatedHosts = { prefix, hosts: [], cleanup: () => removeNamespacesWithPrefix(prefix) };
  try {
    await createUnderlaySwitch(prefix, mtu);
    const wanted = Array.from({ length: options.hosts }, (_, index) => ({ name: `h${index + 1}`, address: underlayAddress(index) }));
    const namespaces = await addUnderlayHosts(prefix, wanted, mtu);
    wanted.forEach(({ name, address }, index) => {
      const netns = namespaces[index]!;
      const runner = processRunner(['nsenter', `--net=/run/netns/${netns}`, '--']);
      result.hosts.push({ name, netns, ip: address, runner, ctx: dataplaneContext({ nsPrefix: netns, runner }) });
    });
    return result;
  } catch (error) {
    await removeNamespacesWithPrefix(prefix);
    throw error;
  }
}

/** Pings from inside a named namespace; resolves to ping's exit code and output (no throw). */
export async function pingFrom(netns: string, target: string, extra: readonly string[] = []): Promise<{ ok: boolean; output: string }> {
  const r = await execa('ip', ['netns', 'exec', netns, 'ping', '-n', '-c', '2', '-W', '1', '-i', '0.2', ...extra, target], { reject: false });
  return { ok: r.exitCode === 0, output: `${r.stdout}\n${r.stderr}`.trim() };
}
