// Every agent option in one place: the config file field, the `weft agent`
// flag, the environment variable and the help line all come from this table
// (agent-command.ts registers the flags, config.ts reads the environment,
// run-agent.ts maps flags to fields). The validation rules and defaults stay
// in config.ts (zod), which fails to type-check when its fields and this
// table's differ. No imports: the CLI loads this for its help even when it
// never starts an agent.

export interface ConfigOption {
  /** commander's flag spelling, with its value placeholder; undefined: config file only. */
  flag?: `--${string} <${string}>` | undefined;
  /** The environment variable; undefined: none. */
  env?: `WEFT_${string}` | undefined;
  /** How text from a flag or the environment becomes the field's value. */
  kind: 'text' | 'number' | 'list';
  help: string;
}

export const CONFIG_OPTIONS = {
  dataDir: { flag: '--data-dir <dir>', env: 'WEFT_DATA_DIR', kind: 'text', help: 'where the node identity and cluster state live (default /var/lib/weft)' },
  // A global flag of every command (program.ts): the agent serves where the client calls.
  apiSocket: { env: 'WEFT_SOCKET', kind: 'text', help: 'the API socket (the global --api-socket flag)' },
  advertiseAddr: { flag: '--advertise-addr <ip>', env: 'WEFT_ADVERTISE_ADDR', kind: 'text', help: 'underlay IPv4 other hosts reach this one on' },
  listenAddr: { flag: '--listen-addr <ip:port>', env: 'WEFT_LISTEN_ADDR', kind: 'text', help: 'where to accept joins (default 0.0.0.0:2377)' },
  gossipPort: { flag: '--gossip-port <port>', env: 'WEFT_GOSSIP_PORT', kind: 'number', help: 'TCP port for node-to-node traffic (default 7946)' },
  name: { flag: '--name <name>', env: 'WEFT_NODE_NAME', kind: 'text', help: 'node name shown in `weft members` (default: hostname)' },
  logLevel: { flag: '--log-level <level>', env: 'WEFT_LOG_LEVEL', kind: 'text', help: 'trace|debug|info|warn|error|fatal (default info)' },
  nsPrefix: { flag: '--ns-prefix <prefix>', env: 'WEFT_NS_PREFIX', kind: 'text', help: 'prefix of the network namespaces this agent creates (default weft)' },
  egressSubnet: { flag: '--egress-subnet <cidr>', env: 'WEFT_EGRESS_SUBNET', kind: 'text', help: 'host-local subnet of the egress bridge (default 172.31.255.0/24)' },
  dnsUpstreams: {
    flag: '--dns-upstream <ip[:port]>', env: 'WEFT_DNS_UPSTREAMS', kind: 'list',
    help: 'resolver for names outside the cluster, tried in order (repeatable; the variable takes a comma-separated list; default: /etc/resolv.conf)',
  },
  dnsTtl: { flag: '--dns-ttl <seconds>', env: 'WEFT_DNS_TTL', kind: 'number', help: 'TTL of the embedded resolver\'s answers (default 5)' },
  tableReapSeconds: { kind: 'number', help: 'seconds a delete is remembered (tombstones; default 1800)' },
  dockerPluginDir: {
    flag: '--docker-plugin-dir <dir>', env: 'WEFT_DOCKER_PLUGIN_DIR', kind: 'text',
    help: 'serve the Docker network/IPAM plugin "weft" at DIR/weft.sock (default /run/docker/plugins; \'\' turns it off)',
  },
  metricsAddr: {
    flag: '--metrics-addr <ip:port>', env: 'WEFT_METRICS_ADDR', kind: 'text',
    help: 'serve Prometheus /metrics, /healthz and /readyz over HTTP here (default off; keep it on a private address)',
  },
  dockerSocket: {
    flag: '--docker-socket <path>', env: 'WEFT_DOCKER_SOCKET', kind: 'text',
    help: 'dockerd\'s API socket, where the plugin reads container names (default /var/run/docker.sock; \'\' never asks)',
  },
} as const satisfies Record<string, ConfigOption>;

export type ConfigField = keyof typeof CONFIG_OPTIONS;

export const CONFIG_FIELDS = Object.keys(CONFIG_OPTIONS) as ConfigField[];

export function isConfigField(name: string): name is ConfigField {
  return Object.hasOwn(CONFIG_OPTIONS, name);
}

/** A field's option, as the common shape. */
export function optionOf(field: ConfigField): ConfigOption {
  return CONFIG_OPTIONS[field];
}

/** The flag's name as typed (`--data-dir`), or undefined for a field without one. */
export function flagName(field: ConfigField): string | undefined {
  return optionOf(field).flag?.split(' ')[0];
}

/** commander's key for a flag (`--data-dir` -> `dataDir`, `--dns-upstream` -> `dnsUpstream`). */
export function flagKey(field: ConfigField): string | undefined {
  return flagName(field)?.slice(2).replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

/** Text from a flag or a variable as the field's value (validated afterwards by config.ts). */
export function optionValue(field: ConfigField, value: string | string[]): unknown {
  const { kind } = optionOf(field);
  if (kind === 'list') return Array.isArray(value) ? value : value.split(',').map((v) => v.trim());
  const text = Array.isArray(value) ? (value.at(-1) ?? '') : value;
  return kind === 'number' ? Number(text) : text;
}
