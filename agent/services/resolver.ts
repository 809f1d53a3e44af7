// The embedded resolver of this host: the DNS server (data plane) bound to the
// gateway bridge's address, answering each sandbox from its own view (service
// plane) and forwarding the rest to the configured upstreams or, when none are
// configured, to the host's /etc/resolv.conf nameservers (re-read every few
// seconds, so a changed host resolver is picked up).
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import { startDnsServer, type DnsServer } from '../../dataplane/dns/server.ts';
import { readUpstreams } from '../../dataplane/dns/upstreams.ts';
import { answerQuestion } from '../../controlplane/services/dns-answers.ts';
import type { ServicePlane } from './service-plane.ts';

const RESOLV_CONF = '/etc/resolv.conf';
const REREAD_MS = 5_000;

export interface ResolverOptions {
  plane: ServicePlane;
  /** The gateway bridge's address: sandboxes' nameserver. */
  address: string;
  upstreams: readonly string[];
  ttl: number;
  logger: Logger;
}

export async function startResolver(options: ResolverOptions): Promise<DnsServer> {
  const server = await startDnsServer({
    address: options.address,
    port: 0,
    resolve: (client, question) => {
      const view = options.plane.viewFor(client.address);
      return view && answerQuestion(view, question, { ttl: options.ttl, random: Math.random });
    },
    upstreams: options.upstreams.length > 0 ? () => options.upstreams : hostUpstreams([options.address], options.logger),
    logger: options.logger,
  });
  options.logger.info({ address: options.address, port: server.port }, 'embedded DNS resolver listening (port 53 on the gateway address is redirected here)');
  return server;
}

function hostUpstreams(exclude: readonly string[], logger: Logger): () => readonly string[] {
  let cached: string[] = [];
  let readAt = 0;
  return () => {
    if (Date.now() - readAt < REREAD_MS) return cached;
    readAt = Date.now();
    try {
      cached = readUpstreams(readFileSync(RESOLV_CONF, 'utf8'), exclude);
    } catch (error) {
      logger.warn({ err: (error as Error).message }, `cannot read ${RESOLV_CONF}; names outside the cluster will not resolve`);
      cached = [];
    }
    return cached;
  };
}
