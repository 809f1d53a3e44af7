// In-process agents on loopback for integration tests: each gets its own data
// dir, API socket, admission and gossip ports (two per agent from a random
// base) and namespace prefix, so several test files can run side by side.
import { join } from 'node:path';
import { resolveConfig, type AgentConfig } from '../../agent/config.ts';

export interface LoopbackCluster {
  /** Directory holding every agent's data dir and socket. */
  base: string;
  /** Admission port of agent 0; agent i listens on portBase + 2i, gossips on portBase + 2i + 1. */
  portBase: number;
  /** Machine-wide unique: agent i's namespaces start with `${nsPrefix}${i}`. */
  nsPrefix: string;
}

export function loopbackAgentConfig(cluster: LoopbackCluster, name: string, index: number): AgentConfig {
  return resolveConfig({
    dataDir: join(cluster.base, name),
    apiSocket: join(cluster.base, `${name}.sock`),
    listenAddr: `127.0.0.1:${cluster.portBase + index * 2}`,
    gossipPort: cluster.portBase + index * 2 + 1,
    advertiseAddr: '127.0.0.1',
    name,
    logLevel: 'warn',
    nsPrefix: `${cluster.nsPrefix}${index}`,
  });
}
