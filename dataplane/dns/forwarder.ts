// Forwarding of names outside the cluster to the host's upstream resolvers,
// tried in order with a per-upstream timeout: a dead first resolver costs one
// timeout, not the query, and a SERVFAIL or REFUSED from one moves on to the
// next (as Docker's resolver does). Every attempt carries a fresh random ID
// and leaves from its own socket, bound to a fresh port the kernel picks at
// random from the ephemeral range and connected to the upstream (as resolvers
// do against spoofing: an off-path attacker must guess ~15 bits of port as
// well as 16 of ID, per attempt, and a port seen once is never reused for
// another query). A reply counts only if it comes from the address and port
// asked, with that ID and the same question. Over TCP one connection per
// attempt (TCP forwards are rare: TCP clients, truncated answers). The
// forwards in flight are capped, and each holds at most one socket, so a flood
// gets REFUSED instead of unbounded memory or file descriptors.
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
  /** Forwards in flight; each holds at most one socket (UDP or TCP) at a time. */
  maxInFlight: number;
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
  /** The open attempts (UDP or TCP), each with the way to end it. */
  readonly #attempts = new Map<Socket | TcpSocket, () => void>();
  readonly #exclude: Upstream[] = [];
  #inFlight = 0;
  #closed = false;
  forwarded = 0;
  failed = 0;
  overloaded = 0;

  constructor(options: ForwarderOptions) {
    this.#o = options;
  }

  /** Never forward to this address (the server itself: a loop). */
  exclude(upstream: Upstream): void {
    this.#exclude.push(upstream);
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  /** Sockets open for forwards now (never more than maxInFlight). */
  get openSockets(): number {
    return this.#attempts.size;
  }

  /** The upstream's reply with the client's ID, or why there is none. */
  async forward(query: Buffer, transport: 'udp' | 'tcp'): Promise<ForwardResult> {
    if (this.#closed) return { kind: 'failed' };
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

  #viaUdp(query: Buffer, upstream: Upstream): Promise<Buffer | undefined> {
    const copy = Buffer.from(query);
    writeId(copy, randomInt(0, 65_536));
    return new Promise((resolve) => {
      const socket = udpSocket();
      const timer = setTimeout(() => finish(undefined), this.#o.timeoutMs);
      const finish = (reply: Buffer | undefined): void => {
        if (!this.#attempts.delete(socket)) return;
        clearTimeout(timer);
        socket.close();
        resolve(reply);
      };
      this.#attempts.set(socket, () => finish(undefined));
      // connect(): the kernel drops datagrams from anyone but the upstream and
      // reports its ICMP port unreachable (ECONNREFUSED) at once, not after the timeout.
      socket.on('message', (message, remote) => {
        if (remote.address !== upstream.host || remote.port !== upstream.port) return;
        if (isResponse(message) && readId(message) === readId(copy) && sameQuestion(copy, message)) finish(message);
      });
      socket.on('error', () => finish(undefined));
      try {
        socket.connect(upstream.port, upstream.host, () => {
          if (this.#attempts.has(socket)) socket.send(copy, (error) => error && finish(undefined));
        });
      } catch {
        finish(undefined);
      }
    });
  }

  #viaTcp(query: Buffer, upstream: Upstream): Promise<Buffer | undefined> {
    const copy = Buffer.from(query);
    writeId(copy, randomInt(0, 65_536));
    return new Promise((resolve) => {
      const socket = connect({ host: upstream.host, port: upstream.port });
      const frames = new TcpFrames();
      const timer = setTimeout(() => finish(undefined), this.#o.timeoutMs);
      const finish = (reply: Buffer | undefined): void => {
        if (!this.#attempts.delete(socket)) return;
        clearTimeout(timer);
        socket.destroy();
        resolve(reply);
      };
      this.#attempts.set(socket, () => finish(undefined));
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
    this.#closed = true;
    for (const end of [...this.#attempts.values()]) end();
  }
}
