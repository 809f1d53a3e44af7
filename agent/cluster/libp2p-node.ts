// Builds the libp2p host that carries all node-to-node traffic: TCP, the
// cluster PSK (private network), Noise, yamux, identify and gossipsub, with a
// connection gater that admits only certified, unrevoked members: inbound
// connections from addresses that are no member's are closed before any
// handshake, and the upgrade of the rest must finish within seconds.
import { createLibp2p, type Libp2p } from 'libp2p';
import type { NetConnectOpts } from 'node:net';
import { tcp, type TCPSocketOptions } from '@libp2p/tcp';
import { noise } from '@chainsafe/libp2p-noise';
import { yamux } from '@chainsafe/libp2p-yamux';
import { identify } from '@libp2p/identify';
import { gossipsub, type GossipSub } from '@libp2p/gossipsub';
import { preSharedKey } from '@libp2p/pnet';
import type { PeerId, PrivateKey, ConnectionGater, MultiaddrConnection } from '@libp2p/interface';

// libp2p's default is 10 s: ten idle TCP connections would then hold every
// pending slot for 10 s. PSK + Noise + yamux take milliseconds between members.
export const INBOUND_UPGRADE_TIMEOUT_MS = 3_000;

export type WeftLibp2p = Libp2p<{ identify: ReturnType<ReturnType<typeof identify>>; pubsub: GossipSub }>;

export interface Libp2pOptions {
  privateKey: PrivateKey;
  psk: Uint8Array;
  listenIp: string;
  port: number;
  /** Answers "may this peer connect?"; consulted on every dial and accept. */
  isAdmitted: (peerId: PeerId) => boolean;
  /** Answers "is this underlay IP a member's?"; consulted on every accept, before any handshake. */
  isMemberAddress: (ip: string) => boolean;
  /** How long a TCP connect may wait for the SYN to be answered (the dial as a whole has its own signal). */
  connectTimeoutMs?: number;
}

export function admissionGater(isAdmitted: (peerId: PeerId) => boolean, isMemberAddress: (ip: string) => boolean): ConnectionGater {
  return {
    // Members live on private underlay addresses; libp2p must dial them.
    denyDialMultiaddr: () => false,
    denyInboundConnection: (connection: MultiaddrConnection) => !isMemberAddress(remoteIp(connection)),
    denyDialPeer: (peerId) => !isAdmitted(peerId),
    denyInboundEncryptedConnection: (peerId) => !isAdmitted(peerId),
    denyOutboundEncryptedConnection: (peerId) => !isAdmitted(peerId),
  };
}

/** The IP of a connection's remote end ('' when it has none, which no member has). */
function remoteIp(connection: MultiaddrConnection): string {
  const component = connection.remoteAddr.getComponents().find((c) => c.name === 'ip4' || c.name === 'ip6');
  return component?.value ?? '';
}

export async function createWeftLibp2p(options: Libp2pOptions): Promise<WeftLibp2p> {
  return createLibp2p({
    privateKey: options.privateKey,
    addresses: { listen: [`/ip4/${options.listenIp}/tcp/${options.port}`] },
    transports: [tcp({ dialOpts: connectOptions(options.connectTimeoutMs) })],
    connectionProtector: preSharedKey({ psk: options.psk }),
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionGater: admissionGater(options.isAdmitted, options.isMemberAddress),
    connectionManager: { inboundUpgradeTimeout: INBOUND_UPGRADE_TIMEOUT_MS },
    // libp2p's monitor pings every connection with /ipfs/ping, which weft does
    // not serve; SWIM already measures liveness, so the monitor would only add
    // a failed negotiation per connection every 10 s.
    connectionMonitor: { enabled: false },
    services: {
      identify: identify(),
      pubsub: gossipsub({
        // A one-host cluster publishes to nobody; that is normal, not an error.
        allowPublishToZeroTopicPeers: true,
        emitSelf: false,
        // Cluster events are rare and small; flooding our own messages to all
        // topic peers gets them out in one hop in small clusters.
        floodPublish: true,
      }),
    },
  }) as Promise<WeftLibp2p>;
}

/**
 * net.connect's `timeout` is an idle timeout that, before the connection is
 * up, bounds the wait for the SYN to be answered; once connected, the TCP
 * transport replaces it with its own inactivity timeout. TCPSocketOptions
 * types only a subset of net.connect's options, but the transport hands the
 * whole object to net.connect.
 */
function connectOptions(timeoutMs: number | undefined): TCPSocketOptions {
  const options: TCPSocketOptions & Pick<NetConnectOpts, 'timeout'> = timeoutMs ? { timeout: timeoutMs } : {};
  return options;
}
