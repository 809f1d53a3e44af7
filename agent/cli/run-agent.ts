// `weft agent` once its flags are parsed: resolve the config, start the
// daemon and its API, and run until SIGTERM/SIGINT.
import { configFromEnv, configFromFile, configFromFlags, resolveConfig, ConfigError, type AgentFlags } from '../config.ts';
import { createLogger } from '../logger.ts';
import { Agent } from '../daemon/agent.ts';
import { refuseIfSocketLive, startApiServer } from '../api/api-server.ts';
import { UsageError } from './usage.ts';
import { join } from 'node:path';
import { startPluginServer, type PluginServer } from '../docker/plugin-server.ts';
import { handshakeHandlers } from '../docker/plugin-handlers.ts';
import type { MetricsServer } from '../metrics/metrics-server.ts';
import { networkHandlers } from '../docker/network-handlers.ts';
import { endpointHandlers } from '../docker/endpoint-handlers.ts';
import { DockerState } from '../docker/docker-state.ts';
import { ContainerEndpoints } from '../docker/container-endpoints.ts';

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

/**
 * A stop that waits on something that never ends (a kernel call, a peer) or
 * leaves something holding the process would keep the agent from exiting:
 * systemd would kill it only after its own timeout, and a restart would wait
 * for that. Past this deadline the agent logs what it was waiting on and
 * exits; its state is on disk already (it saves as it goes), as after a crash.
 * Shorter than the unit's TimeoutStopSec (30 s), so the log says why first.
 */
const STOP_DEADLINE_MS = 20_000;

function exitIfStuck(agent: Agent, log: ReturnType<typeof createLogger>): void {
  setTimeout(() => {
    const step = agent.stopStep === 'done' ? `stopped, but still held by ${process.getActiveResourcesInfo().join(', ')}` : `waiting on: ${agent.stopStep || 'the API and plugin servers'}`;
    log.error({ step }, `the agent did not exit within ${STOP_DEADLINE_MS / 1000} s of the signal; exiting anyway`);
    log.flush();
    process.exit(1);
  }, STOP_DEADLINE_MS).unref();
}

export async function runAgent(flags: AgentFlags): Promise<void> {
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
  let plugin: PluginServer | undefined;
  let metrics: MetricsServer | undefined;
  let containers: ContainerEndpoints | undefined;
  try {
    api = await startApiServer(agent, config.apiSocket, log);
    if (config.dockerPluginDir !== '') {
      const state = new DockerState(config.dataDir);
      containers = new ContainerEndpoints(() => agent.overlay(), state, config.dockerSocket, log);
      const handlers = { ...handshakeHandlers(), ...networkHandlers(() => agent.overlay(), state), ...endpointHandlers(() => agent.overlay(), state, containers) };
      plugin = await startPluginServer(join(config.dockerPluginDir, 'weft.sock'), handlers, log);
      containers.start();
    }
    if (config.metricsAddr !== '') {
      // Imported only when asked for: an agent without metrics has no use for prom-client.
      const { startMetricsServer } = await import('../metrics/metrics-server.ts');
      metrics = await startMetricsServer(config.metricsAddr, () => agent.reading(), log);
    }
  } catch (error) {
    api?.close();
    containers?.stop();
    await plugin?.close();
    await agent.stop();
    throw error;
  }
  if (plugin) log.info({ socket: plugin.socketPath }, 'docker plugin "weft" listening');
  log.info({ socket: config.apiSocket, peerId: agent.peerId, advertise: agent.advertiseAddr }, 'weft agent ready');
  await new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      log.info({ signal }, 'shutting down');
      exitIfStuck(agent, log);
      api.close();
      containers?.stop();
      Promise.all([plugin?.close(), metrics?.close(), agent.stop()]).finally(resolve);
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  log.flush();
}
