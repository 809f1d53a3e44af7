// The admission port's front door. weft accepts the TCP connections itself and
// hands them to gRPC only within limits, before any TLS work is spent on them:
// a per-address rate of new connections, a per-address and a total cap on
// open ones, and an inactivity deadline. One flooding address then exhausts
// only its own allowance, and joins from other addresses go through.
import net from 'node:net';
import type * as grpc from '@grpc/grpc-js';
import { ConcurrencyLimiter, KeyedRateLimiter, type BucketRule } from '../../controlplane/security/rate-limit.ts';

export interface GuardLimits {
  connectionRate: BucketRule;
  connectionsPerAddress: number;
  connectionsTotal: number;
  /** A connection with no traffic for this long is closed (a slow or idle handshake). */
  idleMs: number;
}

export const DEFAULT_GUARD_LIMITS: GuardLimits = {
  connectionRate: { burst: 10, perSecond: 2 },
  connectionsPerAddress: 4,
  connectionsTotal: 256,
  idleMs: 10_000,
};

export interface AdmissionGuard {
  close(): Promise<void>;
}

export function addressOnly(remote: string | undefined): string {
  return (remote ?? '').replace(/^::ffff:/, '');
}

export async function startAdmissionGuard(
  listenAddr: string,
  injector: grpc.ConnectionInjector,
  limits: GuardLimits,
  onRefused: (peer: string, reason: string) => void,
): Promise<AdmissionGuard> {
  const rate = new KeyedRateLimiter(limits.connectionRate);
  const open = new ConcurrencyLimiter(limits.connectionsPerAddress, limits.connectionsTotal);
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ pauseOnConnect: false }, (socket) => {
    const address = addressOnly(socket.remoteAddress);
    const peer = `${address}:${socket.remotePort ?? 0}`;
    socket.on('error', () => undefined); // resets from hostile peers are expected
    if (!rate.take(address, Date.now())) {
      onRefused(peer, 'too many new connections from this address');
      socket.destroy();
      return;
    }
    const held = open.acquire(address);
    if (held !== 'ok') {
      onRefused(peer, held === 'per-address' ? `more than ${limits.connectionsPerAddress} open connections from this address` : `more than ${limits.connectionsTotal} open admission connections`);
      socket.destroy();
      return;
    }
    sockets.add(socket);
    socket.once('close', () => {
      sockets.delete(socket);
      open.release(address);
    });
    socket.setTimeout(limits.idleMs, () => socket.destroy());
    injector.injectConnection(socket);
  });
  const [host, port] = splitListenAddr(listenAddr);
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error) => reject(new Error(`cannot listen for joins on ${listenAddr}: ${error.message}`)));
    server.listen({ host, port }, () => resolve());
  });
  return {
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

function splitListenAddr(listenAddr: string): [string, number] {
  const at = listenAddr.lastIndexOf(':');
  return [listenAddr.slice(0, at).replace(/^\[|\]$/g, ''), Number(listenAddr.slice(at + 1))];
}
