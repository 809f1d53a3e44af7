// What the CNI benches (bench/cni.ts, bench/cni-plugin.ts) share: one lab host
// with a weft network and the plugin configuration for it, a plugin run timed
// from exec to exit, the load average, and a quantile.
import { execa } from 'execa';
import { readFileSync } from 'node:fs';
import { labUp, type LabHost } from '../deploy/lab/lab.ts';
import { weftOn } from '../test/helpers/weft-cli.ts';

/** A one-host lab (prefix: the caller's, for labDown) with weft network `bench`, and weft's plugin configuration for it. */
export async function cniBenchHost(prefix: string): Promise<{ h1: LabHost; config: { cniVersion: string; name: string; type: string; network: string; socket: string } }> {
  const lab = await labUp({ hosts: 1, prefix });
  const h1 = lab.hosts[0]!;
  const created = await weftOn(h1, ['network', 'create', 'bench']);
  if (created.exitCode !== 0) throw new Error(created.stderr);
  return { h1, config: { cniVersion: '1.0.0', name: 'weftbench', type: 'weft', network: 'bench', socket: h1.socket } };
}

/** Runs a plugin (argv) with the CNI environment and configuration, from exec to exit; throws unless it exits 0. */
export async function timedPlugin(argv: readonly string[], env: Record<string, string>, config: object): Promise<number> {
  const started = process.hrtime.bigint();
  const r = await execa(argv[0]!, argv.slice(1), { reject: false, input: JSON.stringify(config), env: { CNI_IFNAME: 'eth0', CNI_PATH: '/usr/lib/cni', ...env } });
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  if (r.exitCode !== 0) throw new Error(`${argv.join(' ')} ${env['CNI_COMMAND']}: ${String(r.stdout)} ${String(r.stderr)}`);
  return ms;
}

export const loadAverage = (): string => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');

export function quantile(values: readonly number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
}
