// The embedded DNS server: UDP and TCP on one address and port, answering the
// cluster's names from the caller's resolve() and forwarding the rest
// (query.ts has the per-query rules, forwarder.ts the upstreams). The UDP
// path stays synchronous for the cluster's names: a cached answer is a map
// lookup, a 2-byte ID rewrite and a send, with no promise and no decode.
import type { Socket } from 'node:dgram';
import type { Logger } from 'pino';
import { Forwarder } from './forwarder.ts';
import { createQueryHandler, type DnsClient, type DnsStats, type Resolve } from './query.ts';
import { listenTcp, type TcpListener } from './tcp-server.ts';
import { udpSocket } from './udp-socket.ts';
import type { DurationHistogram } from '../../lib/histogram.ts';

export type { DnsClient, DnsStats } from './query.ts';

export interface DnsServerOptions {
  address: string;
  /** 0: the kernel picks one (UDP and TCP get the same). */
  port: number;
  /**
   * The cluster's answer for this client, or undefined for a client the
   * server does not serve (REFUSED). Must depend only on the client's address
   * and the question until invalidate() is called: answers are cached.
   */
  resolve: Resolve;
  /** `ip` or `ip:port`, tried in order; read again for every forwarded query. */
  upstreams: () => readonly string[];
  /** Per upstream and attempt; default 1500 ms. */
  upstreamTimeoutMs?: number;
  /** Forwarded queries in flight; beyond, REFUSED. Default 2048. */
  maxInFlight?: number;
  /** Default 256; the listener refuses more. */
  maxTcpConnections?: number;
  /** TCP connections from one client address; default 16. */
  maxTcpPerClient?: number;
  /** Cached encoded answers; default 10,000 (the cache is dropped when full). */
  cacheEntries?: number;
  logger?: Logger;
}

export interface DnsServerStats extends DnsStats {
  forwardFailures: number;
  forwardsInFlight: number;
  /** Sockets the forwarder holds open (one per forward attempt in flight). */
  forwardSockets: number;
  tcpConnections: number;
  tcpRejected: number;
  cacheEntries: number;
  /** Query latency (arrival to reply) as histogram buckets (lib/histogram.ts). */
  latency: ReturnType<DurationHistogram['snapshot']>;
  latencyBounds: readonly number[];
}

export interface DnsServer {
  readonly address: string;
  readonly port: number;
  /** The cluster's state changed: cached answers are stale. */
  invalidate(): void;
  stats(): DnsServerStats;
  close(): Promise<void>;
}

const DEFAULT_TIMEOUT_MS = 1_500;
const DEFAULT_MAX_IN_FLIGHT = 2_048;
const DEFAULT_TCP_CONNECTIONS = 256;
/** A stub resolver needs one or two; 16 leaves room for a busy sandbox and 16 others at the global cap. */
const DEFAULT_TCP_PER_CLIENT = 16;
const DEFAULT_CACHE_ENTRIES = 10_000;
/** Absorbs bursts while the event loop is busy (the kernel caps it at net.core.rmem_max). */
const UDP_RECEIVE_BUFFER = 4 * 1024 * 1024;

export async function startDnsServer(options: DnsServerOptions): Promise<DnsServer> {
  let closed = false;
  const log = options.logger;
  const forwarder = new Forwarder({
    upstreams: options.upstreams,
    timeoutMs: options.upstreamTimeoutMs ?? DEFAULT_TIMEOUT_MS,
    maxInFlight: options.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT,
  });
  const handler = createQueryHandler(options.resolve, forwarder, options.cacheEntries ?? DEFAULT_CACHE_ENTRIES);
  const isClosed = (): boolean => closed;
  const tcpLimits = { maxConnections: options.maxTcpConnections ?? DEFAULT_TCP_CONNECTIONS, maxPerClient: options.maxTcpPerClient ?? DEFAULT_TCP_PER_CLIENT };
  let udp: Socket | undefined;
  let tcp: TcpListener | undefined;
  // With port 0 the kernel picks a free UDP port whose TCP twin may be taken: pick again.
  for (let attempt = 1; !tcp; attempt++) {
    udp = await bindUdp(options.address, options.port);
    try {
      tcp = await listenTcp(options.address, udp.address().port, tcpLimits, handler, isClosed, log);
    } catch (error) {
      udp.close();
      if (options.port !== 0 || (error as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt >= 8) throw error;
    }
  }
  const port = udp!.address().port;
  forwarder.exclude({ host: options.address, port });
  const socket = udp!;

  const send = (reply: Buffer | undefined, remote: { port: number; address: string }): void => {
    if (reply && !closed) socket.send(reply, remote.port, remote.address);
  };
  socket.on('message', (message, remote) => {
    let reply: ReturnType<typeof handler.handle>;
    try {
      reply = handler.handle(message, { address: remote.address, port: remote.port, transport: 'udp' } satisfies DnsClient);
    } catch (error) {
      log?.warn({ err: (error as Error).message }, 'DNS query failed');
      return;
    }
    if (reply instanceof Promise) {
      reply.then((r) => send(r, remote), (error: Error) => log?.warn({ err: error.message }, 'DNS query failed'));
    } else send(reply, remote);
  });

  return {
    address: options.address,
    port,
    invalidate: () => handler.cache.clear(),
    stats: () => ({
      ...handler.stats,
      byType: { ...handler.stats.byType },
      latency: handler.latency.snapshot(),
      latencyBounds: handler.latency.bounds,
      forwardFailures: forwarder.failed,
      forwardsInFlight: forwarder.inFlight,
      forwardSockets: forwarder.openSockets,
      tcpConnections: tcp.connections.size,
      tcpRejected: tcp.rejected(),
      cacheEntries: handler.cache.size,
    }),
    close: async () => {
      if (closed) return;
      closed = true;
      forwarder.close();
      for (const connection of tcp.connections) connection.destroy();
      await Promise.all([
        new Promise<void>((resolve) => socket.close(() => resolve())),
        new Promise<void>((resolve) => tcp.server.close(() => resolve())),
      ]);
    },
  };
}

function bindUdp(address: string, port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = udpSocket(UDP_RECEIVE_BUFFER);
    socket.once('error', reject);
    socket.bind(port, address, () => {
      socket.off('error', reject);
      socket.on('error', () => undefined); // e.g. ICMP errors for replies to clients that left
      resolve(socket);
    });
  });
}
