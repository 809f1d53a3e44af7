// `weft agent`: runs the daemon in the foreground until SIGTERM/SIGINT.
// Only the flags live here: the daemon (libp2p, the data plane) is imported
// when the command runs, so the client commands never load it.
import type { Command } from 'commander';
import { examples } from './help-examples.ts';
import type { AgentFlags } from './run-agent.ts';

export function registerAgentCommand(program: Command): void {
  program
    .command('agent')
    .description('run the weft agent (the daemon) in the foreground')
    .option('--config <file>', 'JSON config file (fields: dataDir, apiSocket, advertiseAddr, listenAddr, gossipPort, name, logLevel, nsPrefix, egressSubnet, dnsUpstreams, dnsTtl, tableReapSeconds, dockerPluginDir, dockerSocket, metricsAddr)')
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
    .option('--docker-plugin-dir <dir>', 'serve the Docker network/IPAM plugin "weft" at DIR/weft.sock (default /run/docker/plugins; \'\' turns it off)')
    .option('--metrics-addr <ip:port>', 'serve Prometheus /metrics, /healthz and /readyz over HTTP here (default off; keep it on a private address)')
    .option('--docker-socket <path>', 'dockerd\'s API socket, where the plugin reads container names (default /var/run/docker.sock; \'\' never asks)')
    .addHelpText('after', examples(['weft agent', 'weft agent --advertise-addr 198.18.0.1 --data-dir /var/lib/weft', 'weft agent --config /etc/weft/agent.json --log-level debug']))
    .action(async (flags: AgentFlags, command: Command) => {
      const globals = command.optsWithGlobals<{ apiSocket?: string }>();
      const { runAgent } = await import('./run-agent.ts');
      await runAgent({ ...flags, apiSocket: globals.apiSocket });
    });
}
