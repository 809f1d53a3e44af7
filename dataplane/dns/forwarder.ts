// Forwarding of names outside the cluster to the host's upstream resolvers,
// tried in order with a per-upstream timeout: a dead first resolver costs one
// timeout, not the query, and a SERVFAIL or REFUSED from one moves on to the
// next (as Docker's resolver does). Every attempt carries a fresh random ID
// and leaves from one of a few sockets picked at random (more than 16 bits of
// entropy against spoofed replies); a reply counts only if it comes from the
// address and port asked, with that ID and the same question. Over TCP one
// connection per attempt (TCP forwards are rare: TCP clients, truncated
// answers). The forwards in flight are capped, so a flood gets SERVFAIL
// instead of unbounded memory.
import type { Socket } from 'node:dgram';
import { connect, isIPv4, type Socket as TcpSocket } from 'node:net';
import { randomInt } from 'node:crypto';
import { isResponse, rcode, RCODE, readId, sameQuestion, writeId } from './wire.ts';
import { TcpFrames, frame } from './tcp-frames.ts';
import { udpSocket } from './udp-socket.ts';

export interface Upstream {
  host: string;
  port: number;
}

export interface ForwarderOptions {
  upstreams: () => readonly string[];
  /** Per upstream and attempt. */
  timeoutMs: number;
  maxInFlight: number;
  /** Sockets to send UDP forwards from. */
  sockets?: number;
}

interface PendingUdp {
  upstream: Upstream;
  socket: Socket;
  query: Buffer;
  resolve: (reply: Buffer | undefined) => void;
}

export type ForwardResult =
  | { kind: 'reply'; reply: Buffer }
  | { kind: 'overloaded' }
  | { kind: 'failed' };

/** `ip` or `ip:port` (IPv4; port 53 by default); undefined for anything else. */
export function parseUpstream(text: string): Upstream | undefined {
  const match = /^([\d.]+)(?::(\d{1,5}))?$/.exec(text.trim());
  if (!match || !isIPv4(match[1]!)) return undefined;
  const port = match[2] === undefined ? 53 : Number(match[2]);
  return port >= 1 && port <= 65_535 ? { host: match[1]!, port } : undefined;
}

export class Forwarder {
  readonly #o: ForwarderOptions;
  readonly #pending = new Map<number, PendingUdp>();
  readonly #sockets: Socket[] = [];
  readonly #tcp = new Set<TcpSocket>();
  readonly #exclude: Upstream[] = [];
  #inFlight = 0;
  forwarded = 0;
  failed = 0;
  overloaded = 0;

  constructor(options: ForwarderOptions) {
    this.#o = options;
  }

  async start(): Promise<void> {
    for (let i = 0; i < (this.#o.sockets ?? 4); i++) {
      const socket = udpSocket();
      socket.on('message', (message, remote) => this.#onReply(socket, message, remote.address, remote.port));
      socket.on('error', () => undefined); // per-send errors surface as timeouts
      await new Promise<void>((resolve) => socket.bind(0, resolve));
      this.#sockets.push(socket);
    }
  }

  /** Never forward to this address (the server itself: a loop). */
  exclude(upstream: Upstream): void {
    this.#exclude.push(upstream);
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  /** The upstream's reply with the client's ID, or why there is none. */
  async forward(query: Buffer, transport: 'udp' | 'tcp'): Promise<ForwardResult> {
    if (this.#inFlight >= this.#o.maxInFlight) {
      this.overloaded++;
      return { kind: 'overloaded' };
    }
    const exclude = this.#exclude;
    const upstreams = this.#o.upstreams()
      .map(parseUpstream)
      .filter((u): u is Upstream => u !== undefined && !exclude.some((e) => e.host === u.host && e.port === u.port));
    this.#inFlight++;
    this.forwarded++;
    try {
      for (const upstream of upstreams) {
        const reply = transport === 'udp' ? await this.#viaUdp(query, upstream) : await this.#viaTcp(query, upstream);
        if (reply === undefined) continue;
        const code = rcode(reply);
        if (code === RCODE.SERVFAIL || code === RCODE.REFUSED) continue;
        writeId(reply, readId(query));
        return { kind: 'reply', reply };
      }
      this.failed++;
      return { kind: 'failed' };
    } finally {
      this.#inFlight--;
    }
  }

  #freshId(): number | undefined {
    for (let tries = 0; tries < 16; tries++) {
      const id = randomInt(0, 65_536);
      if (!this.#pending.has(id)) return id;
    }
    return undefined;
  }

  #viaUdp(query: Buffer, upstream: Upstream): Promise<Buffer | undefined> {
    const id = this.#freshId();
    const socket = this.#sockets[randomInt(0, Math.max(1, this.#sockets.length))];
    if (id === undefined || socket === undefined) return Promise.resolve(undefined);
    const copy = Buffer.from(query);
    writeId(copy, id);
    return new Promise((resolve) => {
      const timer = setTimeout(() => finish(undefined), this.#o.timeoutMs);
      const finish = (reply: Buffer | undefined): void => {
        clearTimeout(timer);
        if (this.#pending.get(id)?.resolve === finish) this.#pending.delete(id);
        resolve(reply);
      };
      this.#pending.set(id, { upstream, socket, query: copy, resolve: finish });
      try {
        socket.send(copy, upstream.port, upstream.host, (error) => {
          if (error) finish(undefined);
        });
      } catch {
        finish(undefined);
      }
    });
  }

  #onReply(socket: Socket, message: Buffer, address: string, port: number): void {
    if (!isResponse(message)) return;
    const pending = this.#pending.get(readId(message));
    if (!pending || pending.socket !== socket || pending.upstream.host !== address || pending.upstream.port !== port) return;
    if (!sameQuestion(pending.query, message)) return;
    pending.resolve(message);
  }

  #viaTcp(query: Buffer, upstream: Upstream): Promise<Buffer | undefined> {
    const copy = Buffer.from(query);
    writeId(copy, randomInt(0, 65_536));
    return new Promise((resolve) => {
      const socket = connect({ host: upstream.host, port: upstream.port });
      this.#tcp.add(socket);
      const frames = new TcpFrames();
      const timer = setTimeout(() => finish(undefined), this.#o.timeoutMs);
      const finish = (reply: Buffer | undefined): void => {
        clearTimeout(timer);
        this.#tcp.delete(socket);
        socket.destroy();
        resolve(reply);
      };
      socket.once('connect', () => socket.write(frame(copy)));
      socket.on('data', (chunk: Buffer) => {
        for (const reply of frames.push(chunk)) {
          if (isResponse(reply) && readId(reply) === readId(copy) && sameQuestion(copy, reply)) return finish(reply);
        }
      });
      socket.once('error', () => finish(undefined));
      socket.once('close', () => finish(undefined));
    });
  }

  close(): void {
    for (const socket of this.#sockets) socket.close();
    this.#sockets.length = 0;
    for (const socket of this.#tcp) socket.destroy();
    for (const pending of [...this.#pending.values()]) pending.resolve(undefined);
    this.#pending.clear();
  }
}
