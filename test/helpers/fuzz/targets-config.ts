// Fuzz targets for what the agent reads from the host at start-up:
//   config.file         a --config JSON file, merged over the defaults
//   config.env          WEFT_* variables (the input is NAME=value lines)
//   config.resolv-conf  the host's resolv.conf, for the DNS upstreams
// The clean refusal is ConfigError (the agent exits with it, naming the
// field); resolv.conf never refuses: a line that is not a nameserver is skipped.
import { isIPv4 } from 'node:net';
import { ConfigError, configFromEnv, configFromText, resolveConfig } from '../../../agent/config.ts';
import { readUpstreams } from '../../../dataplane/dns/upstreams.ts';
import { OracleError, type FuzzTarget } from './target.ts';
import { mutateBytes } from './mutate.ts';
import type { Random } from './random.ts';

const TEXT = new TextEncoder();
const UTF8 = new TextDecoder();

const CONFIGS: object[] = [
  {},
  { dataDir: '/var/lib/weft', listenAddr: '198.18.0.1:2377', gossipPort: 7946, name: 'h1', logLevel: 'debug' },
  { advertiseAddr: '198.18.0.1', nsPrefix: 'lab1', egressSubnet: '172.31.255.0/24', dnsUpstreams: ['198.51.100.53', '203.0.113.53:5353'], dnsTtl: 30 },
  { apiSocket: '/run/weft/h2.sock', dnsTtl: 0, dnsUpstreams: [] },
];

const HOSTILE_JSON: unknown[] = [
  null, true, 0, -1, 1e308, 2 ** 53 + 1, 65_536, 0.5, '', ' ', 'x'.repeat(5000), '/'.repeat(200), '\u0000', '../../etc', '198.18.0.1:0',
  '198.18.0.1:99999', '300.1.1.1', '172.31.255.0/29', [], ['198.18.0.53'], Array.from({ length: 9 }, () => '198.18.0.53'), {}, { a: 1 },
];

/** One key of a seed config set to a hostile JSON value, an unknown or prototype key added, or deep nesting. */
function mutateConfig(seed: Uint8Array, random: Random): Uint8Array {
  let value: Record<string, unknown>;
  // A deeply nested input made by an earlier round is not worth re-parsing: noise on it.
  if (seed.length > 10_000) return mutateBytes(seed, random);
  try {
    value = JSON.parse(UTF8.decode(seed)) as Record<string, unknown>;
  } catch {
    return mutateBytes(seed, random);
  }
  const keys = ['dataDir', 'apiSocket', 'advertiseAddr', 'listenAddr', 'gossipPort', 'name', 'logLevel', 'egressSubnet', 'nsPrefix', 'dnsUpstreams', 'dnsTtl'];
  switch (random.int(6)) {
    case 0:
      return TEXT.encode(`{"__proto__": {"dataDir": "/tmp/x"}, ${UTF8.decode(seed).slice(1)}`);
    case 1:
      return TEXT.encode(JSON.stringify({ ...value, [random.pick(['constructor', 'toString', 'unknown', ''])]: random.pick(HOSTILE_JSON) }));
    case 2: {
      const depth = random.pick([10, 1000, 100_000]);
      return TEXT.encode(`{"dnsUpstreams": ${'['.repeat(depth)}${']'.repeat(depth)}}`);
    }
    case 3:
      return random.chance(0.5) ? mutateBytes(seed, random) : TEXT.encode(random.pick(['[]', 'null', '"x"', '1', '', '{', '{}}']));
    default:
      return TEXT.encode(JSON.stringify({ ...value, [random.pick(keys)]: random.pick(HOSTILE_JSON) }));
  }
}

const ENV_NAMES = ['WEFT_DATA_DIR', 'WEFT_SOCKET', 'WEFT_ADVERTISE_ADDR', 'WEFT_LISTEN_ADDR', 'WEFT_GOSSIP_PORT', 'WEFT_NODE_NAME', 'WEFT_LOG_LEVEL', 'WEFT_NS_PREFIX', 'WEFT_EGRESS_SUBNET', 'WEFT_DNS_UPSTREAMS', 'WEFT_DNS_TTL'];

function envOf(input: Uint8Array): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const line of UTF8.decode(input).split('\n')) {
    const at = line.indexOf('=');
    if (at > 0) env[line.slice(0, at)] = line.slice(at + 1);
  }
  return env;
}

function mutateEnv(seed: Uint8Array, random: Random): Uint8Array {
  if (random.chance(0.4)) return mutateBytes(seed, random);
  const value = random.pick(['', ' ', '0', '-1', '1e9', 'NaN', '0x10', '7946.5', 'Infinity', 'x'.repeat(300), '198.18.0.1', '198.18.0.1:2377', ',', ',,,', '198.18.0.53, 198.51.100.1', 'TRACE', '/']);
  return TEXT.encode(`${UTF8.decode(seed)}\n${random.pick(ENV_NAMES)}=${value}`);
}

export function configTargets(): FuzzTarget[] {
  return [
    {
      name: 'config.file', group: 'config', rejects: 'ConfigError',
      seeds: CONFIGS.map((c) => TEXT.encode(JSON.stringify(c))),
      mutate: mutateConfig,
      run: (input) => resolveConfig(configTargetsDefaults, configFromText(UTF8.decode(input), 'config file fuzz.json')),
      isClean: (error) => error instanceof ConfigError,
    },
    {
      name: 'config.env', group: 'config', rejects: 'ConfigError',
      seeds: [TEXT.encode('WEFT_NODE_NAME=h1\nWEFT_GOSSIP_PORT=7946'), TEXT.encode('WEFT_DNS_UPSTREAMS=198.18.0.53,203.0.113.9:53\nWEFT_DNS_TTL=10\nWEFT_LOG_LEVEL=warn'), TEXT.encode('')],
      mutate: mutateEnv,
      run: (input) => resolveConfig(configFromEnv(envOf(input))),
      isClean: (error) => error instanceof ConfigError,
    },
    {
      name: 'config.resolv-conf', group: 'config', rejects: 'none: other lines are skipped',
      seeds: ['nameserver 192.0.2.53\nsearch lab\n', 'nameserver 198.51.100.1 # office\nnameserver 198.51.100.2\nnameserver 198.51.100.3\nnameserver 198.51.100.4\noptions ndots:2\n', '# empty\n'].map((s) => TEXT.encode(s)),
      mutate: mutateBytes,
      maxRandom: 4096,
      run: (input) => {
        const upstreams = readUpstreams(UTF8.decode(input), ['192.0.2.53']);
        if (upstreams.length > 3 || upstreams.some((u) => !isIPv4(u) || u === '192.0.2.53')) throw new OracleError(`bad upstream list ${JSON.stringify(upstreams)}`);
        return upstreams;
      },
      isClean: () => false,
    },
  ];
}

/** Flags the agent would add on top: none here, so the file alone decides. */
const configTargetsDefaults = {};
