// What a runtime hands the plugin: the network configuration on stdin and the
// CNI_* environment, which the plugin forwards to the agent unread (CniExec).
// Both are outside input: each problem gets the spec's error code and a
// message naming the field.
import { z } from 'zod';
import { DEFAULT_API_SOCKET } from '../api/defaults.ts';
import { CNI_CODE, CniError } from './cni-error.ts';
import { bandwidthEntrySchema, limitsOf, type BandwidthLimits } from '../../lib/bandwidth.ts';
import { CONTAINER_ID, CONTAINER_ID_RULE, INTERFACE_NAME, INTERFACE_NAME_RULE, OBJECT_NAME, OBJECT_NAME_RULE, SERVICE_NAME, SERVICE_NAME_RULE } from '../../lib/names.ts';

/** Result formats this plugin writes (0.4.0 adds `version` to each IP; CHECK exists from 0.4.0; 1.1.0 adds STATUS and GC, results as 1.0.0). */
export const SUPPORTED_VERSIONS = ['0.4.0', '1.0.0', '1.1.0'] as const;
export type CniVersion = (typeof SUPPORTED_VERSIONS)[number];

export const COMMANDS = ['ADD', 'DEL', 'CHECK', 'VERSION', 'STATUS', 'GC'] as const;
export type CniCommand = (typeof COMMANDS)[number];
/** Commands CNI 1.1 added: a configuration of an older version cannot ask for them. */
const SINCE_1_1: readonly CniCommand[] = ['STATUS', 'GC'];

// The agent's own rules (lib/names.ts): a name the plugin passes is one the agent takes.
const objectName = (what: string) => z.string().regex(OBJECT_NAME, `${what} must be ${OBJECT_NAME_RULE}`);
const aliasList = z.array(objectName('an alias')).max(32);
const serviceList = z.array(z.string().regex(SERVICE_NAME, `a service name must be ${SERVICE_NAME_RULE}`)).max(32);

const configSchema = z.object({
  cniVersion: z.string().min(1, 'cniVersion is required'),
  name: z.string().min(1, 'name (the CNI network name) is required'),
  type: z.string(),
  network: objectName('network (a weft network\'s name)'),
  socket: z.string().startsWith('/', 'socket must be an absolute path').max(107, 'socket must be a unix socket path under 108 characters').default(DEFAULT_API_SOCKET),
  /** Conventions' `args.cni`: static per-network values. */
  args: z.object({ cni: z.object({ name: objectName('the endpoint name').optional(), aliases: aliasList.optional(), services: serviceList.optional() }).loose().optional() }).loose().optional(),
  /** Capability args: `aliases` as podman sends them, keyed by CNI network name; `bandwidth` as Kubernetes sends it. */
  // The limits are checked by bandwidthOf, for ADD only: a DEL or CHECK with limits ADD refused must still go through.
  runtimeConfig: z.object({ aliases: z.record(z.string(), aliasList).optional(), bandwidth: z.unknown().optional() }).loose().optional(),
  /** Static limits, as the stock bandwidth plugin's configuration has them (top-level ingressRate ...) or grouped. */
  bandwidth: z.unknown().optional(),
  ingressRate: z.unknown().optional(),
  ingressBurst: z.unknown().optional(),
  egressRate: z.unknown().optional(),
  egressBurst: z.unknown().optional(),
  /** GC (1.1): the attachments the runtime still has on this network; any other is released. */
  'cni.dev/valid-attachments': z.array(z.object({
    containerID: z.string().regex(CONTAINER_ID, `a valid attachment's containerID must be ${CONTAINER_ID_RULE}`),
    ifname: z.string().regex(INTERFACE_NAME, `a valid attachment's ifname must be ${INTERFACE_NAME_RULE}`),
  }).loose()).max(100_000).optional(),
}).loose();

const BANDWIDTH_FIELDS = ['ingressRate', 'ingressBurst', 'egressRate', 'egressBurst'] as const;

/**
 * The limits to apply: the configuration's own (top-level fields, or a `bandwidth`
 * object) win over the capability's, as in the stock plugin, which reads
 * runtimeConfig only when its configuration sets none.
 */
function bandwidthOf(c: z.infer<typeof configSchema>): BandwidthLimits | undefined {
  const topLevel = BANDWIDTH_FIELDS.some((f) => c[f] !== undefined);
  if (topLevel && c.bandwidth !== undefined) throw new CniError(CNI_CODE.invalidConfig, 'invalid network configuration: give the bandwidth limits either at the top level (ingressRate, ...) or in "bandwidth", not both');
  const entry = topLevel ? Object.fromEntries(BANDWIDTH_FIELDS.map((f) => [f, c[f]])) : (c.bandwidth ?? c.runtimeConfig?.bandwidth);
  if (entry === undefined) return undefined;
  const parsed = bandwidthEntrySchema.safeParse(entry);
  if (!parsed.success) throw new CniError(CNI_CODE.invalidConfig, 'invalid network configuration: bad bandwidth limits', z.prettifyError(parsed.error));
  return limitsOf(parsed.data);
}

export interface CniConfig {
  cniVersion: CniVersion;
  name: string;
  network: string;
  socket: string;
  /** Limits on the container's traffic (bits); undefined: none. */
  bandwidth: BandwidthLimits | undefined;
  /** Endpoint name, aliases and services from args.cni and runtimeConfig (CNI_ARGS may override). */
  endpointName: string;
  aliases: string[];
  services: string[];
  /** GC: the attachments to keep, as (containerId, ifname). */
  validAttachments: Array<{ containerId: string; ifname: string }>;
}

/**
 * The configuration as `command` needs it. Bandwidth limits are read for ADD only: DEL must
 * release whatever ADD made (or nothing) whatever the limits say, and CHECK compares the
 * kernel with the limits the attachment was made with.
 */
export function parseConfig(text: string, command: CniCommand = 'ADD'): CniConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new CniError(CNI_CODE.decode, 'cannot decode the network configuration on stdin', (error as Error).message);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new CniError(CNI_CODE.decode, 'the network configuration on stdin must be a JSON object');
  const version = (raw as { cniVersion?: unknown }).cniVersion;
  if (typeof version === 'string' && version !== '' && !(SUPPORTED_VERSIONS as readonly string[]).includes(version)) {
    throw new CniError(CNI_CODE.incompatibleVersion, `CNI version ${version} is not supported`, `supported: ${SUPPORTED_VERSIONS.join(', ')}`);
  }
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) throw new CniError(CNI_CODE.invalidConfig, 'invalid network configuration', z.prettifyError(parsed.error));
  const c = parsed.data;
  if (c.type !== 'weft') throw new CniError(CNI_CODE.invalidConfig, `invalid network configuration: type is "${c.type}", this plugin is "weft"`);
  if (SINCE_1_1.includes(command) && c.cniVersion !== '1.1.0') throw new CniError(CNI_CODE.incompatibleVersion, `${command} needs cniVersion 1.1.0, the configuration has ${c.cniVersion}`);
  if (command === 'GC' && c['cni.dev/valid-attachments'] === undefined) throw new CniError(CNI_CODE.invalidConfig, 'invalid network configuration: GC needs "cni.dev/valid-attachments" (an empty list releases every attachment of this network)');
  return {
    cniVersion: c.cniVersion as CniVersion,
    name: c.name,
    network: c.network,
    socket: c.socket,
    endpointName: c.args?.cni?.name ?? '',
    aliases: [...(c.args?.cni?.aliases ?? []), ...(c.runtimeConfig?.aliases?.[c.name] ?? [])],
    services: c.args?.cni?.services ?? [],
    bandwidth: command === 'ADD' ? bandwidthOf(c) : undefined,
    validAttachments: (c['cni.dev/valid-attachments'] ?? []).map((a) => ({ containerId: a.containerID, ifname: a.ifname })),
  };
}

/** The commands about one container's attachment, which come with its CNI_* environment. */
export type ContainerCommand = 'ADD' | 'DEL' | 'CHECK';

export interface CniEnv {
  command: ContainerCommand;
  containerId: string;
  netns: string;
  ifname: string;
  /** From CNI_ARGS: K8S_POD_NAME or name; aliases and services as comma lists. */
  name: string | undefined;
  aliases: string[];
  services: string[];
}

/** CNI_ARGS keys runtimes send that mean nothing to weft: accepted without IgnoreUnknown. */
const KNOWN_IGNORED = new Set(['IgnoreUnknown', 'K8S_POD_NAMESPACE', 'K8S_POD_INFRA_CONTAINER_ID', 'K8S_POD_UID']);

export function parseCommand(env: NodeJS.ProcessEnv): CniCommand {
  const command = env['CNI_COMMAND'];
  if ((COMMANDS as readonly (string | undefined)[]).includes(command)) return command as CniCommand;
  throw new CniError(CNI_CODE.invalidEnv, command === undefined || command === '' ? 'CNI_COMMAND is not set' : `CNI_COMMAND "${command}" is not one of ${COMMANDS.join(', ')}`);
}

export function parseEnv(env: NodeJS.ProcessEnv): CniEnv {
  const command = parseCommand(env);
  if (command !== 'ADD' && command !== 'DEL' && command !== 'CHECK') throw new CniError(CNI_CODE.invalidEnv, `${command} is not about one container: it takes no CNI_CONTAINERID`);
  const need = (key: string): string => {
    const value = env[key];
    if (value === undefined || value === '') throw new CniError(CNI_CODE.invalidEnv, `${key} is required for ${command}`);
    return value;
  };
  const containerId = need('CNI_CONTAINERID');
  if (!CONTAINER_ID.test(containerId)) throw new CniError(CNI_CODE.invalidEnv, `CNI_CONTAINERID must be ${CONTAINER_ID_RULE}`);
  const ifname = need('CNI_IFNAME');
  if (!INTERFACE_NAME.test(ifname)) throw new CniError(CNI_CODE.invalidEnv, `CNI_IFNAME "${ifname}" is not an interface name (${INTERFACE_NAME_RULE})`);
  need('CNI_PATH');
  // DEL may come after the namespace is gone: the spec lets the runtime leave CNI_NETNS empty then.
  const netns = command === 'DEL' ? (env['CNI_NETNS'] ?? '') : need('CNI_NETNS');
  if (netns !== '' && !netns.startsWith('/')) throw new CniError(CNI_CODE.invalidEnv, 'CNI_NETNS must be an absolute path');
  return { command, containerId, netns, ifname, ...parseCniArgs(env['CNI_ARGS'] ?? '') };
}

/** CNI_ARGS: "K=V;K=V". Unknown keys are an error unless IgnoreUnknown=1 (libcni's convention). */
export function parseCniArgs(text: string): { name: string | undefined; aliases: string[]; services: string[] } {
  const pairs = new Map<string, string>();
  for (const item of text.split(';').filter((p) => p !== '')) {
    const eq = item.indexOf('=');
    if (eq <= 0) throw new CniError(CNI_CODE.invalidEnv, `CNI_ARGS item "${item}" is not KEY=VALUE`);
    pairs.set(item.slice(0, eq), item.slice(eq + 1));
  }
  const ignoreUnknown = /^(1|true)$/i.test(pairs.get('IgnoreUnknown') ?? '');
  const used = new Set(['K8S_POD_NAME', 'name', 'aliases', 'services']);
  for (const key of pairs.keys()) {
    if (!used.has(key) && !KNOWN_IGNORED.has(key) && !ignoreUnknown) throw new CniError(CNI_CODE.invalidEnv, `CNI_ARGS key "${key}" is not supported (set IgnoreUnknown=1 to pass it)`);
  }
  const list = (key: string, pattern: RegExp, rule: string): string[] => {
    const items = (pairs.get(key) ?? '').split(',').filter((v) => v !== '');
    for (const v of items) if (!pattern.test(v)) throw new CniError(CNI_CODE.invalidEnv, `CNI_ARGS ${key}: "${v}" must be ${rule}`);
    return items;
  };
  const name = pairs.get('name') ?? pairs.get('K8S_POD_NAME');
  if (name !== undefined && !OBJECT_NAME.test(name)) throw new CniError(CNI_CODE.invalidEnv, `CNI_ARGS name "${name}" must be ${OBJECT_NAME_RULE}`);
  return { name, aliases: list('aliases', OBJECT_NAME, OBJECT_NAME_RULE), services: list('services', SERVICE_NAME, SERVICE_NAME_RULE) };
}
