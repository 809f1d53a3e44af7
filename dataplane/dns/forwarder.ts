// Forwarding of names outside the cluster to the host's upstream resolvers,
// tried in order with a per-upstream timeout: a dead first resolver costs one
// timeout, not the query. Over UDP a fresh random ID per attempt, and only a
// reply from the address and port asked is accepted (spoofed or late replies
// are dropped); over TCP one connection per attempt. The number of forwarded
// queries in flight is capped, so a flood gets SERVFAIL instead of memory.
import { createSocket, type Socket } from 'node:dgram';
import { connect } from 'node:net';
import { randomInt } from 'node:crypto';
import { isIPv4 } from 'node:net';
import { isResponse, readId, writeId } from './wire.ts';
import { TcpFrames, frame } from './tcp-frames.ts';

export interface Upstream {
  host: string;
  port: number;
}

export interface ForwarderOptions {
  upstreams: () => readonly string[];
  /** Per upstream and attempt. */
  timeoutMs: number;
  maxInFlight: number;
}

interface PendingUdp {
  upstream: Upstream;
  resolve: (reply: Buffer | undefined) => void;
}

export function parseUpstream(text: string): Upstream | undefined {
  const [host, port] = text.split(':');
  if (host === undefined || !isIPv4(host)) return undefined;
  const value = port === undefined ? 53 : Number(port);
  return Number.isInteger(value) && value >= 1 && value <= 65_535 ? { host, port: value } : undefined;
}

export class Forwarder {
  readonly #o: ForwarderOptions;
  readonly #pending = new Map<number, PendingUdp>();
  #socket: Socket | undefined;
  #inFlight = 0;
  forwarded = 0;
  failed = 0;

  constructor(options: ForwarderOptions) {
    this.#o = options;
  }

  async start(): Promise<void> {
    const socket = createSocket('udp4');
    socket.on('message', (message, remote) => this.#onReply(message, remote.address, remote.port));
    socket.on('error', () => undefined); // per-send errors surface as timeouts
    await new Promise<void>((resolve) => socket.bind(0, resolve));
    this.#socket = socket;
  }

  /** The upstream's reply with the client's ID, or undefined when no upstream answered. */
  async forward(query: Buffer, transport: 'udp' | 'tcp'): Promise<Buffer | undefined> {
    if (this.#inFlight >= this.#o.maxInFlight) return undefined;
    const upstreams = this.#o.upstreams().map(parseUpstream).filter((u): u is Upstream => u !== undefined);
    this.#inFlight++;
    this.forwarded++;
    try {
      for (const upstream of upstreams) {
        const reply = transport === 'udp' ? await this.#viaUdp(query, upstream) : await this.#viaTcp(query, upstream);
        if (reply) {
          writeId(reply, readId(query));
          return reply;
        }
      }
      this.failed++;
      return undefined;
    } finally {
      this.#inFlight--;
    }
  }

  #viaUdp(query: Buffer, upstream: Upstream): Promise<Buffer | undefined> {
    const socket = this.#socket;
    if (!socket) return Promise.resolve(undefined);
    let id = randomInt(0, 65_536);
    for (let tries = 0; this.#pending.has(id) && tries < 16; tries++) id = randomInt(0, 65_536);
    if (this.#pending.has(id)) return Promise.resolve(undefined);
    const copy = Buffer.from(query);
    writeId(copy, id);
    return new Promise((resolve) => {
      const timer = setTimeout(() => finish(undefined), this.#o.timeoutMs);
      const finish = (reply: Buffer | undefined) => {
        clearTimeout(timer);
        if (this.#pending.get(id)?.resolve === finish) this.#pending.delete(id);
        resolve(reply);
      };
      this.#pending.set(id, { upstream, resolve: finish });
      socket.send(copy, upstream.port, upstream.host, (error) => {
        if (error) finish(undefined);
      });
    });
  }

  #onReply(message: Buffer, address: string, port: number): void {
    if (!isResponse(message)) return;
    const pending = this.#pending.get(readId(message));
    if (!pending || pending.upstream.host !== address || pending.upstream.port !== port) return;
    pending.resolve(message);
  }

  #viaTcp(query: Buffer, upstream: Upstream): Promise<Buffer | undefined> {
    return new Promise((resolve) => {
      const socket = connect({ host: upstream.host, port: upstream.port });
      const frames = new TcpFrames();
      const timer = setTimeout(() => finish(undefined), this.#o.timeoutMs);
      const finish = (reply: Buffer | undefined) => {
        clearTimeout(timer);
        socket.destroy();
        resolve(reply);
      };
      socket.once('connect', () => socket.write(frame(query)));
      socket.on('data', (chunk) => {
        const reply = frames.push(chunk)[0];
        if (reply) finish(reply);
      });
      socket.once('error', () => finish(undefined));
      socket.once('close', () => finish(undefined));
    });
  }

  close(): void {
    this.#socket?.close();
    this.#socket = undefined;
    for (const pending of this.#pending.values()) pending.resolve(undefined);
    this.#pending.clear();
  }
}
