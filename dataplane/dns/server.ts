// The embedded DNS server: UDP and TCP on one address, answering from the
// caller's resolve() (the cluster's names) and forwarding the rest. Every
// packet is hostile until decoded: undecodable queries get FORMERR when their
// header is readable and are dropped otherwise, responses sent to the server
// are dropped, and one bad packet never affects the next. Answers that fit one
// record are cached encoded, keyed by who asked and the query's bytes; the cache is dropped
// whenever the caller says the cluster's state changed (invalidate()).
import { createSocket, type Socket } from 'node:dgram';
import { createServer, type Server, type Socket as TcpSocket } from 'node:net';
import * as dnsPacket from 'dns-packet';
import type { Logger } from 'pino';
import { Forwarder } from './forwarder.ts';
import { TcpFrames, frame } from './tcp-frames.ts';
import { encodeReply, errorReply, HEADER_BYTES, isResponse, RCODE, readId, writeId } from './wire.ts';
import type { DnsOutcome, DnsQuestion } from '../../controlplane/services/dns-answers.ts';

export interface DnsClient {
  address: string;
  port: number;
  transport: 'udp' | 'tcp';
}

export interface DnsServerOptions {
  address: string;
  /** 0: the kernel picks one. */
  port: number;
  /** The cluster's answer for this client, or undefined for a client the server does not serve (REFUSED). */
  resolve: (client: DnsClient, question: DnsQuestion) => DnsOutcome | undefined;
  upstreams: () => readonly string[];
  upstreamTimeoutMs?: number;
  maxInFlight?: number;
  maxTcpConnections?: number;
  logger?: Logger;
}

export interface DnsStats {
  queries: number;
  answered: number;
  cached: number;
  forwarded: number;
  servfail: number;
  formerr: number;
  refused: number;
  dropped: number;
}

export interface DnsServer {
  readonly address: string;
  readonly port: number;
  /** The cluster's state changed: cached answers are stale. */
  invalidate(): void;
  stats(): DnsStats;
  close(): Promise<void>;
}

const MIN_UDP_PAYLOAD = 512;
const MAX_UDP_PAYLOAD = 4096;
const TCP_IDLE_MS = 10_000;
const CACHE_LIMIT = 10_000;

export async function startDnsServer(options: DnsServerOptions): Promise<DnsServer> {
  const forwarder = new Forwarder({ upstreams: options.upstreams, timeoutMs: options.upstreamTimeoutMs ?? 1_500, maxInFlight: options.maxInFlight ?? 2_048 });
  await forwarder.start();
  const stats: DnsStats = { queries: 0, answered: 0, cached: 0, forwarded: 0, servfail: 0, formerr: 0, refused: 0, dropped: 0 };
  let cache = new Map<string, Buffer>();

  /** A byte-identical query (all but the ID) from the same client gets the same answer: no decoding. */
  function fromCache(message: Buffer, key: string): Buffer | undefined {
    const hit = cache.get(key);
    if (!hit) return undefined;
    stats.cached++;
    const reply = Buffer.from(hit);
    writeId(reply, readId(message));
    return reply;
  }

  /** One query in, at most one reply out. Never throws. */
  async function handle(message: Buffer, client: DnsClient): Promise<Buffer | undefined> {
    stats.queries++;
    if (message.length < HEADER_BYTES || isResponse(message)) {
      stats.dropped++;
      return undefined;
    }
    const key = cacheKey(message, client);
    const hit = fromCache(message, key);
    if (hit) return hit;
    let query: dnsPacket.DecodedPacket;
    try {
      query = dnsPacket.decode(message);
    } catch {
      stats.formerr++;
      return errorReply(message, RCODE.FORMERR);
    }
    if (((message[2]! >> 3) & 0x0f) !== 0) return errorReply(message, RCODE.NOTIMP);
    const question = query.questions?.[0];
    if (query.questions?.length !== 1 || !question || typeof question.name !== 'string') {
      stats.formerr++;
      return errorReply(message, RCODE.FORMERR);
    }
    const opt = query.additionals?.find((r) => r.type === 'OPT') as { udpPayloadSize?: number } | undefined;
    const ednsPayload = opt ? Math.min(Math.max(opt.udpPayloadSize ?? MIN_UDP_PAYLOAD, MIN_UDP_PAYLOAD), MAX_UDP_PAYLOAD) : undefined;
    const limit = client.transport === 'tcp' ? 65_535 : ednsPayload ?? MIN_UDP_PAYLOAD;
    const recursionDesired = query.flag_rd;
    const outcome = question.class === 'IN' ? options.resolve(client, { name: question.name, type: question.type }) : undefined;
    if (outcome === undefined) {
      stats.refused++;
      return errorReply(message, RCODE.REFUSED, question);
    }
    if (outcome.kind === 'forward') {
      stats.forwarded++;
      const reply = await forwarder.forward(message, client.transport);
      if (reply) return reply;
      stats.servfail++;
      return errorReply(message, RCODE.SERVFAIL, question);
    }
    stats.answered++;
    const reply = encodeReply({
      id: query.id ?? 0,
      question,
      recursionDesired,
      rcode: RCODE[outcome.rcode],
      answers: outcome.answers,
      additionals: outcome.additionals,
      ednsPayload,
      authoritative: true,
    }, limit);
    // Several records are shuffled per answer: only single-record answers are cached.
    if (outcome.answers.length <= 1) {
      if (cache.size >= CACHE_LIMIT) cache = new Map();
      cache.set(key, Buffer.from(reply));
    }
    return reply;
  }

  const udp = await bindUdp(options.address, options.port, (message, remote) => {
    // The hot path stays synchronous: no promise per cached answer.
    if (message.length >= HEADER_BYTES && !isResponse(message)) {
      const hit = fromCache(message, cacheKey(message, { address: remote.address, port: remote.port, transport: 'udp' }));
      if (hit) {
        stats.queries++;
        udp.send(hit, remote.port, remote.address);
        return;
      }
    }
    handle(message, { address: remote.address, port: remote.port, transport: 'udp' })
      .then((reply) => reply && udp.send(reply, remote.port, remote.address))
      .catch((error: Error) => options.logger?.warn({ err: error.message }, 'DNS query failed'));
  });
  const port = udp.address().port;
  const tcp = await listenTcp(options.address, port, options.maxTcpConnections ?? 256, (socket) => serveTcp(socket, handle, options.logger));
  return {
    address: options.address,
    port,
    invalidate: () => {
      cache = new Map();
    },
    stats: () => ({ ...stats, forwarded: forwarder.forwarded }),
    close: async () => {
      forwarder.close();
      await new Promise<void>((resolve) => udp.close(() => resolve()));
      await new Promise<void>((resolve) => tcp.close(() => resolve()));
    },
  };
}

function cacheKey(message: Buffer, client: DnsClient): string {
  return `${client.transport}|${client.address}|${message.toString('latin1', 2)}`;
}

function bindUdp(address: string, port: number, onMessage: (message: Buffer, remote: { address: string; port: number }) => void): Promise<Socket> {
  return new Promise((resolve, reject) => {
    // A larger receive buffer absorbs bursts (the kernel caps it at net.core.rmem_max).
    const socket = createSocket({ type: 'udp4', recvBufferSize: 4 * 1024 * 1024 });
    socket.once('error', reject);
    socket.on('message', onMessage);
    socket.bind(port, address, () => {
      socket.off('error', reject);
      socket.on('error', () => undefined); // e.g. ICMP errors for replies to clients that left
      resolve(socket);
    });
  });
}

function listenTcp(address: string, port: number, maxConnections: number, onConnection: (socket: TcpSocket) => void): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer(onConnection);
    server.maxConnections = maxConnections;
    server.once('error', reject);
    server.listen(port, address, () => {
      server.off('error', reject);
      server.on('error', () => undefined);
      resolve(server);
    });
  });
}

/** Several queries per connection, answered in order; idle connections close. */
function serveTcp(socket: TcpSocket, handle: (message: Buffer, client: DnsClient) => Promise<Buffer | undefined>, logger: Logger | undefined): void {
  const frames = new TcpFrames();
  const client: DnsClient = { address: socket.remoteAddress ?? '', port: socket.remotePort ?? 0, transport: 'tcp' };
  let queue: Promise<unknown> = Promise.resolve();
  socket.setTimeout(TCP_IDLE_MS, () => socket.destroy());
  socket.on('error', () => undefined);
  socket.on('data', (chunk: Buffer) => {
    for (const message of frames.push(chunk)) {
      queue = queue
        .then(() => handle(message, client))
        .then((reply) => {
          if (reply && !socket.destroyed) socket.write(frame(reply));
        })
        .catch((error: Error) => logger?.warn({ err: error.message }, 'DNS query over TCP failed'));
    }
  });
}
