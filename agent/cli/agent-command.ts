// `weft agent`: runs the daemon in the foreground until SIGTERM/SIGINT.
import type { Command } from 'commander';
import { configFromEnv, configFromFile, resolveConfig, validatePartial, ConfigError, type AgentConfigInput } from '../config.ts';
import { createLogger } from '../logger.ts';
import { Agent } from '../daemon/agent.ts';
import { refuseIfSocketLive, startApiServer } from '../api/api-server.ts';
import { UsageError } from './usage.ts';

interface AgentFlags {
  config?: string;
  dataDir?: string;
  advertiseAddr?: string;
  listenAddr?: string;
  gossipPort?: string;
  apiSocket?: string;
  logLevel?: string;
  name?: string;
  nsPrefix?: string;
  egressSubnet?: string;
  dnsUpstream?: string[];
  dnsTtl?: string;
}

export function registerAgentCommand(program: Command): void {
  program
    .command('agent')
    .description('run the weft agent (the daemon) in the foreground')
    .option('--config <file>', 'JSON config file (fields: dataDir, apiSocket, advertiseAddr, listenAddr, gossipPort, name, logLevel, nsPrefix, egressSubnet, dnsUpstreams, dnsTtl)')
    .option('--data-dir <dir>', 'where the node identity and cluster state live (default /var/lib/weft)')
    .option('--advertise-addr <ip>', 'underlay IPv4 other hosts reach this one on')
    .option('--listen-addr <ip:port>', 'where to accept joins (default 0.0.0.0:2377)')
    .option('--gossip-port <port>', 'TCP port for node-to-node traffic (default 7946)')
    .option('--name <name>', 'node name shown in `weft members` (default: hostname)')
    .option('--log-level <level>', 'trace|debug|info|warn|error|fatal (default info)')
    .option('--ns-prefix <prefix>', 'prefix of the network namespaces this agent creates (default weft)')
    .option('--egress-subnet <cidr>', 'host-local subnet of the egress bridge (default 172.31.255.0/24)')
    .option('--dns-upstream <ip[:port]>', 'resolver for names outside the cluster, tried in order (repeatable; default: /etc/resolv.conf)', (v: string, all: string[] = []) => [...all, v])
    .option('--dns-ttl <seconds>', 'TTL of the embedded resolver\'s answers (default 5)')
    .action(async (flags: AgentFlags, command: Command) => {
      const globals = command.optsWithGlobals<{ apiSocket?: string }>();
      await runAgent({ ...flags, apiSocket: globals.apiSocket });
    });
}

function configFromFlags(flags: AgentFlags): AgentConfigInput {
  const raw: Record<string, unknown> = {
    dataDir: flags.dataDir,
    advertiseAddr: flags.advertiseAddr,
    listenAddr: flags.listenAddr,
    gossipPort: flags.gossipPort === undefined ? undefined : Number(flags.gossipPort),
    apiSocket: flags.apiSocket,
    logLevel: flags.logLevel,
    name: flags.name,
    nsPrefix: flags.nsPrefix,
    egressSubnet: flags.egressSubnet,
    dnsUpstreams: flags.dnsUpstream,
    dnsTtl: flags.dnsTtl === undefined ? undefined : Number(flags.dnsTtl),
  };
  const defined = Object.fromEntries(Object.entries(raw).filter(([, v]) => v !== undefined));
  return validatePartial(defined, 'command-line flags');
}

/**
 * The agent drives the kernel through system tools (ip, bridge, nft, sysctl,
 * nsenter). Started from npm, PATH begins with node_modules/.bin, which holds
 * an unrelated `nft` (Node File Trace) that accepts `nft -f -` and does
 * nothing: system directories must come first.
 */
function preferSystemTools(): void {
  const system = ['/usr/local/sbin', '/usr/sbin', '/sbin', '/usr/local/bin', '/usr/bin', '/bin'];
  const rest = (process.env['PATH'] ?? '').split(':').filter((p) => p !== '' && !system.includes(p));
  process.env['PATH'] = [...system, ...rest].join(':');
}

async function runAgent(flags: AgentFlags): Promise<void> {
  preferSystemTools();
  let config;
  try {
    const fromFile = flags.config ? configFromFile(flags.config) : {};
    config = resolveConfig(fromFile, configFromEnv(process.env), configFromFlags(flags));
  } catch (error) {
    if (error instanceof ConfigError) throw new UsageError(error.message);
    throw error;
  }
  await refuseIfSocketLive(config.apiSocket);
  const log = createLogger(config.logLevel);
  const agent = await Agent.start(config, log);
  let api;
  try {
    api = await startApiServer(agent, config.apiSocket, log);
  } catch (error) {
    await agent.stop();
    throw error;
  }
  log.info({ socket: config.apiSocket, peerId: agent.peerId, advertise: agent.advertiseAddr }, 'weft agent ready');
  await new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      log.info({ signal }, 'shutting down');
      api.forceShutdown();
      agent.stop().finally(resolve);
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  log.flush();
}
