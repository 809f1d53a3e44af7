// Runs a CNI conflist the way libcni (containerd's and podman's CNI library)
// does, against the real plugin executables: ADD through the plugins in order,
// each getting the previous one's result as `prevResult`; CHECK in order and
// DEL in reverse order, each with the chain's cached ADD result; capability
// args (`runtimeConfig`) only to the plugins that declare the capability.
// Used where a runtime offers no way in: ctr and podman never run CHECK, and
// neither passes bandwidth limits.
import { execa } from 'execa';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { CNI_BIN_DIR } from './cni-view.ts';

const WEFT_CNI = fileURLToPath(new URL('../../bin/weft-cni', import.meta.url));

export interface Conflist {
  cniVersion: string;
  name: string;
  plugins: Array<Record<string, unknown> & { type: string; capabilities?: Record<string, boolean> }>;
}

export interface ChainCall {
  containerId: string;
  /** The lab host's namespace the plugins run in (the runtime's, for portmap and bandwidth). */
  hostNetns: string;
  /** The container's namespace path. */
  netns: string;
  ifname: string;
  args?: string;
  /** Capability args by capability name (portMappings, bandwidth, aliases, ...). */
  runtimeConfig?: Record<string, unknown>;
}

export class CniChainError extends Error {
  readonly plugin: string;
  readonly output: string;
  constructor(plugin: string, command: string, output: string) {
    super(`${plugin} ${command} failed: ${output}`);
    this.plugin = plugin;
    this.output = output;
  }
}

function executable(type: string): string {
  return type === 'weft' ? WEFT_CNI : join(CNI_BIN_DIR, type);
}

function pluginConfig(list: Conflist, plugin: Conflist['plugins'][number], call: ChainCall, prevResult: object | undefined): object {
  const runtimeConfig = Object.fromEntries(Object.entries(call.runtimeConfig ?? {}).filter(([key]) => plugin.capabilities?.[key] === true));
  return {
    ...plugin,
    cniVersion: list.cniVersion,
    name: list.name,
    ...(Object.keys(runtimeConfig).length > 0 ? { runtimeConfig } : {}),
    ...(prevResult === undefined ? {} : { prevResult }),
  };
}

async function invoke(command: string, list: Conflist, plugin: Conflist['plugins'][number], call: ChainCall, prevResult: object | undefined): Promise<object | undefined> {
  const r = await execa('nsenter', [`--net=/run/netns/${call.hostNetns}`, executable(plugin.type)], {
    reject: false,
    timeout: 120_000,
    input: JSON.stringify(pluginConfig(list, plugin, call, prevResult)),
    env: {
      CNI_COMMAND: command,
      CNI_CONTAINERID: call.containerId,
      CNI_NETNS: call.netns,
      CNI_IFNAME: call.ifname,
      CNI_ARGS: call.args ?? '',
      CNI_PATH: CNI_BIN_DIR,
      PATH: process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin',
    },
  });
  const out = String(r.stdout).trim();
  if (r.exitCode !== 0) throw new CniChainError(plugin.type, command, `${out} ${String(r.stderr).trim()}`.trim());
  return out === '' ? undefined : (JSON.parse(out) as object);
}

/** ADD through the chain; returns the final result (what a runtime caches). */
export async function chainAdd(list: Conflist, call: ChainCall): Promise<Record<string, unknown>> {
  let result: object | undefined;
  for (const plugin of list.plugins) result = await invoke('ADD', list, plugin, call, result);
  return (result ?? {}) as Record<string, unknown>;
}

export async function chainCheck(list: Conflist, call: ChainCall, cached: object): Promise<void> {
  for (const plugin of list.plugins) await invoke('CHECK', list, plugin, call, cached);
}

export async function chainDel(list: Conflist, call: ChainCall, cached: object | undefined): Promise<void> {
  for (const plugin of [...list.plugins].reverse()) await invoke('DEL', list, plugin, call, cached);
}
