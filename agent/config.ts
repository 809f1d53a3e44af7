// Agent configuration: defaults < config file (JSON) < environment < flags.
// Every source is validated by the same zod schema, and an error names the
// field and the source it came from, so the operator knows what to fix.
import { z } from 'zod';
import { hostname } from 'node:os';
import { readFileSync } from 'node:fs';
import { isIPv4 } from 'node:net';
import { OBJECT_NAME, OBJECT_NAME_RULE, namePattern } from '../lib/names.ts';
import { DEFAULT_ADMISSION_PORT, DEFAULT_API_SOCKET } from './api/defaults.ts';
import { CONFIG_FIELDS, flagKey, flagName, isConfigField, optionOf, optionValue, type ConfigField } from './config-options.ts';

export { DEFAULT_ADMISSION_PORT, DEFAULT_API_SOCKET };

export const DEFAULT_GOSSIP_PORT = 7946;
export const DEFAULT_DATA_DIR = '/var/lib/weft';

const NS_PREFIX = namePattern(40);
const ipv4 = z.string().refine((v) => isIPv4(v), 'must be an IPv4 address such as 198.18.0.1');
const listenAddr = z
  .string()
  .regex(/^(\d{1,3}(\.\d{1,3}){3}):(\d{1,5})$/, 'must be IP:PORT such as 0.0.0.0:2377')
  .refine((v) => isIPv4(v.split(':')[0] ?? '') && Number(v.split(':')[1]) >= 1 && Number(v.split(':')[1]) <= 65535, 'must be IP:PORT with a valid IPv4 address and a port in 1..65535');

const upstream = z
  .string()
  .regex(/^(\d{1,3}(\.\d{1,3}){3})(:\d{1,5})?$/, 'must be IP or IP:PORT such as 198.18.0.53 or 198.18.0.53:5353')
  .refine((v) => isIPv4(v.split(':')[0] ?? '') && (v.split(':')[1] === undefined || (Number(v.split(':')[1]) >= 1 && Number(v.split(':')[1]) <= 65535)), 'must be IP[:PORT] with a valid IPv4 address and a port in 1..65535');

export const agentConfigSchema = z.strictObject({
  dataDir: z.string().min(1).startsWith('/', 'must be an absolute path'),
  apiSocket: z.string().min(1).startsWith('/', 'must be an absolute path').max(100, 'unix socket paths must be under 100 characters'),
  advertiseAddr: ipv4.optional(),
  listenAddr: listenAddr,
  gossipPort: z.number().int().min(1).max(65535),
  name: z.string().regex(OBJECT_NAME, `must be ${OBJECT_NAME_RULE}`),
  logLevel: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal']),
  // Network namespace names are global to the machine; several agents on one
  // machine (the lab) must each use their own prefix.
  // Host-local subnet of the egress bridge (like docker_gwbridge); must not overlap overlay networks.
  egressSubnet: z.string().regex(/^\d{1,3}(\.\d{1,3}){3}\/(1[6-9]|2[0-8])$/, 'must be an IPv4 CIDR from /16 to /28, such as 172.31.255.0/24'),
  nsPrefix: z.string().regex(NS_PREFIX.pattern, `must be ${NS_PREFIX.rule}`),
  // Where the embedded resolver forwards names outside the cluster, tried in
  // order; empty: the nameservers of the host's /etc/resolv.conf.
  dnsUpstreams: z.array(upstream).max(8, 'at most 8 upstream resolvers'),
  // Seconds a client may cache an answer: short, so a cached answer never
  // outlives a dead backend for long (docs/dns.md).
  dnsTtl: z.number().int().min(0).max(3600, 'must be 0-3600 seconds'),
  // Seconds a delete is remembered (tombstones). A peer away for longer
  // still learns of it from the entry's owner (docs/tables.md), so this
  // bounds only how long other hosts can relay it. Config file only.
  tableReapSeconds: z.number().int().min(5, 'must be at least 5 seconds').max(604_800, 'must be at most 604800 seconds (7 days)'),
  // Where /metrics, /healthz and /readyz are served over plain HTTP; '' (the
  // default) serves nothing: the page tells anyone who reaches it the
  // cluster's size, names and traffic, so the operator picks an address a
  // firewall or the scraper's network keeps private (docs/metrics.md).
  metricsAddr: z.string().refine((v) => v === '' || listenAddr.safeParse(v).success, 'must be IP:PORT such as 127.0.0.1:9470 (an IPv4 address and a port in 1..65535), or \'\' (off)'),
  // Where the Docker remote plugin socket `weft.sock` goes; '' turns the plugin off.
  // Several dockerds on one machine read /run/docker/plugins: each needs its own (the lab).
  dockerPluginDir: z.union([z.literal(''), z.string().startsWith('/', 'must be an absolute path or \'\' (off)').max(90, 'must be under 90 characters (unix socket paths are short)')]),
  // dockerd's API socket: the plugin reads a container's name there (Docker sends none to a plugin); '' = never asked.
  dockerSocket: z.union([z.literal(''), z.string().startsWith('/', 'must be an absolute path or \'\' (off)').max(107, 'must be under 108 characters (unix socket paths are short)')]),
});

export type AgentConfig = z.infer<typeof agentConfigSchema>;
export type AgentConfigInput = Partial<AgentConfig>;

export class ConfigError extends Error {
  override name = 'ConfigError';
}

export function defaultConfig(): AgentConfig {
  return {
    dataDir: DEFAULT_DATA_DIR,
    apiSocket: DEFAULT_API_SOCKET,
    listenAddr: `0.0.0.0:${DEFAULT_ADMISSION_PORT}`,
    gossipPort: DEFAULT_GOSSIP_PORT,
    name: hostname().split('.')[0]?.slice(0, 63) || 'weft-node',
    logLevel: 'info',
    nsPrefix: 'weft',
    egressSubnet: '172.31.255.0/24',
    dnsUpstreams: [],
    dnsTtl: 5,
    tableReapSeconds: 1800,
    dockerPluginDir: '/run/docker/plugins',
    metricsAddr: '',
    dockerSocket: '/var/run/docker.sock',
  };
}

// Each schema field has its line in config-options.ts and each line a field: else this does not type-check.
type SameKeys<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const optionsMatchTheSchema: SameKeys<keyof AgentConfig, ConfigField> = true;
void optionsMatchTheSchema;

/** The fields the environment sets, by variable. */
const ENV_FIELDS = new Map(CONFIG_FIELDS.flatMap((field) => {
  const variable = optionOf(field).env;
  return variable === undefined ? [] : [[variable, field] as const];
}));

export function configFromEnv(env: NodeJS.ProcessEnv): AgentConfigInput {
  const out: Record<string, unknown> = {};
  for (const [variable, field] of ENV_FIELDS) {
    const value = env[variable];
    if (value === undefined || value === '') continue;
    out[field] = optionValue(field, value);
  }
  return validatePartial(out, 'environment', (field) => (isConfigField(field) ? optionOf(field).env : undefined) ?? field);
}

/** The flags of `weft agent` as commander parses them (agent-command.ts registers them from config-options.ts). */
export type AgentFlags = { config?: string; apiSocket?: string } & Record<string, string | string[] | undefined>;

export function configFromFlags(flags: AgentFlags): AgentConfigInput {
  const raw: Record<string, unknown> = {};
  for (const field of CONFIG_FIELDS) {
    // --api-socket is global (program.ts): commander hands it over under the field's own name.
    const value = field === 'apiSocket' ? flags.apiSocket : flags[flagKey(field) ?? ''];
    if (value !== undefined) raw[field] = optionValue(field, value);
  }
  const flagOf = (field: string) => (field === 'apiSocket' ? '--api-socket' : isConfigField(field) ? flagName(field) : undefined) ?? field;
  return validatePartial(raw, 'command-line flags', flagOf);
}

export function configFromFile(path: string): AgentConfigInput {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigError(`cannot read config file ${path}: ${(error as Error).message}`);
  }
  return configFromText(text, `config file ${path}`);
}

/** The contents of a config file, checked like the file itself. */
export function configFromText(text: string, source: string): AgentConfigInput {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new ConfigError(`${source} is not valid JSON: ${(error as Error).message}`);
  }
  return validatePartial(parsed, source);
}

/**
 * `label` names a field the way the source spells it (a flag, a variable), so
 * an error points at what the operator typed rather than at an internal name.
 */
export function validatePartial(input: unknown, source: string, label: (field: string) => string = (field) => field): AgentConfigInput {
  const result = agentConfigSchema.partial().safeParse(input);
  if (!result.success) throw new ConfigError(describeIssues(result.error, source, label));
  return result.data;
}

/** Merges sources in increasing precedence and validates the result. */
export function resolveConfig(...sources: AgentConfigInput[]): AgentConfig {
  const merged: Record<string, unknown> = { ...defaultConfig() };
  for (const source of sources) {
    for (const [key, value] of Object.entries(source)) if (value !== undefined) merged[key] = value;
  }
  const result = agentConfigSchema.safeParse(merged);
  if (!result.success) throw new ConfigError(describeIssues(result.error, 'configuration'));
  return result.data;
}

function describeIssues(error: z.ZodError, source: string, label: (field: string) => string = (field) => field): string {
  const lines = error.issues.map((issue) => {
    const [first, ...rest] = issue.path.map(String);
    const field = first === undefined ? '(top level)' : [label(first), ...rest].join('.');
    return `  ${field}: ${issue.message}`;
  });
  return `invalid ${source}:\n${lines.join('\n')}`;
}

export function admissionPortOf(config: AgentConfig): number {
  return Number(config.listenAddr.split(':')[1]);
}

export function listenIpOf(config: AgentConfig): string {
  return config.listenAddr.split(':')[0] ?? '0.0.0.0';
}
