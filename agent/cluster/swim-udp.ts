// SWIM over its own UDP socket on the gossip port (as memberlist does): a
// probe is one sealed datagram each way (swim-datagram.ts) instead of a
// libp2p stream with its negotiation, window updates and closes, which cost
// ~15 packets per SWIM message on an idle cluster. A lost datagram is a lost
// packet, which SWIM is built for. Datagrams go only to member addresses and
// are accepted only from them; every bad one is dropped and counted by reason.
import { createSocket, type Socket, type RemoteInfo } from 'node:dgram';
import { isIPv4 } from 'node:net';
import type { SwimMessage } from '../../controlplane/membership/index.ts';
import { decodeSwim, encodeSwim } from '../wire/swim-codec.ts';
import { DatagramError, MAX_DATAGRAM_BYTES, DATAGRAM_OVERHEAD_BYTES, datagramKey, openDatagram, sealDatagram, type DropReason } from './swim-datagram.ts';

export interface SwimUdpOptions {
  selfId: string;
  psk: Uint8Array;
  listenIp: string;
  port: number;
  /** Is this underlay IP an active member's? (Checked before any cryptography.) */
  isMemberAddress: (ip: string) => boolean;
  sign: (bytes: Uint8Array) => Uint8Array;
  /** True when `signature` is by the key of the active member `nodeId`. */
  verifyMember: (nodeId: string, bytes: Uint8Array, signature: Uint8Array) => boolean;
  receive: (from: string, message: SwimMessage) => void;
  onDrop: (reason: DropReason, error: Error, ip: string) => void;
}

/** The UDP endpoint of a SWIM address (swim-transport.ts swimAddress: /ip4/IP/tcp/PORT/p2p/ID). */
export function udpEndpointOf(address: string): { ip: string; port: number } | undefined {
  const match = /^\/ip4\/([0-9.]{7,15})\/tcp\/(\d{1,5})\/p2p\/[^/]+$/.exec(address);
  if (!match || !isIPv4(match[1]!)) return undefined;
  const port = Number(match[2]);
  return port > 0 && port < 65_536 ? { ip: match[1]!, port } : undefined;
}

export class SwimUdp {
  readonly #options: SwimUdpOptions;
  readonly #key: Buffer;
  readonly #socket: Socket;

  private constructor(options: SwimUdpOptions, socket: Socket) {
    this.#options = options;
    this.#key = datagramKey(options.psk);
    this.#socket = socket;
    socket.on('message', (datagram, remote) => this.#onDatagram(datagram, remote));
  }

  /** Binds the socket; fails (like the TCP listener) when the port is taken. */
  static async bind(options: SwimUdpOptions): Promise<SwimUdp> {
    const socket = createSocket({ type: 'udp4' });
    await new Promise<void>((resolve, reject) => {
      const failed = (error: Error): void => {
        socket.close();
        reject(new Error(
          `cannot listen for SWIM datagrams on ${options.listenIp}:${options.port}/udp (${error.message}); ` +
          'another program (Docker Swarm, Serf) may hold that port: choose another --gossip-port',
        ));
      };
      socket.once('error', failed);
      socket.bind({ address: options.listenIp, port: options.port, exclusive: true }, () => {
        socket.off('error', failed);
        resolve();
      });
    });
    const udp = new SwimUdp(options, socket);
    // Send errors (unreachable host, full buffer) are lost packets; the socket stays.
    socket.on('error', () => undefined);
    return udp;
  }

  /**
   * Sends one packet. Returns false when it cannot go as a datagram (too
   * large, or an address that is not a member's UDP endpoint): the caller
   * then uses the stream transport.
   */
  send(to: string, address: string, message: SwimMessage): boolean {
    const endpoint = udpEndpointOf(address);
    if (!endpoint || !this.#options.isMemberAddress(endpoint.ip)) return false;
    const payload = encodeSwim(message);
    if (payload.length + DATAGRAM_OVERHEAD_BYTES > MAX_DATAGRAM_BYTES) return false;
    let datagram: Buffer;
    try {
      datagram = sealDatagram({ key: this.#key, sender: this.#options.selfId, recipient: to, payload, sign: this.#options.sign });
    } catch {
      return false; // a recipient without a node ID's form: the stream transport names peers by peer ID instead
    }
    this.#socket.send(datagram, endpoint.port, endpoint.ip, () => undefined);
    return true;
  }

  #onDatagram(datagram: Buffer, remote: RemoteInfo): void {
    const opened = this.#open(datagram, remote.address);
    if (!opened) return;
    try {
      this.#options.receive(opened.from, opened.message);
    } catch (error) {
      // A packet membership could not take must not take the socket (or the agent) down with it.
      this.#options.onDrop('badPacket', error as Error, remote.address);
    }
  }

  #open(datagram: Buffer, ip: string): { from: string; message: SwimMessage } | undefined {
    try {
      if (!this.#options.isMemberAddress(ip)) throw new DatagramError('notMember', `datagram from ${ip}, which is no member's address`);
      const opened = openDatagram(this.#key, this.#options.selfId, datagram, this.#options.verifyMember);
      try {
        return { from: opened.sender, message: decodeSwim(opened.payload) };
      } catch (error) {
        throw new DatagramError('badPacket', (error as Error).message);
      }
    } catch (error) {
      const reason = error instanceof DatagramError ? error.reason : 'badPacket';
      this.#options.onDrop(reason, error as Error, ip);
      return undefined;
    }
  }

  close(): void {
    try {
      this.#socket.close();
    } catch {
      // Already closed.
    }
  }
}
