// DNS over TCP (RFC 7766): several queries per connection, answered as each
// is ready (clients match by ID, so a slow forward does not hold up a local
// answer behind it), an idle timeout, and backpressure: a client that sends
// faster than it reads, or keeps too many queries outstanding, is not read
// from until it catches up. The connection count is capped by the listener,
// and per client address below that, so that one sandbox holding connections
// open cannot take the slots every other sandbox on the host needs.
import { createServer, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';
import type { DnsClient, QueryHandler } from './query.ts';
import { TcpFrames, frame } from './tcp-frames.ts';

export const TCP_IDLE_MS = 10_000;
const MAX_OUTSTANDING = 64;

export interface TcpListener {
  server: Server;
  connections: Set<Socket>;
  rejected: () => number;
}

export interface TcpLimits {
  /** All clients together; the listener refuses more. */
  maxConnections: number;
  /** One client address. */
  maxPerClient: number;
}

export function listenTcp(address: string, port: number, limits: TcpLimits, handler: QueryHandler, isClosed: () => boolean, logger: Logger | undefined): Promise<TcpListener> {
  const connections = new Set<Socket>();
  const perClient = new Map<string, number>();
  let rejected = 0;
  return new Promise((resolve, reject) => {
    const server = createServer((socket) => {
      const client = socket.remoteAddress ?? '';
      const open = perClient.get(client) ?? 0;
      if (open >= limits.maxPerClient) {
        rejected++;
        socket.on('error', () => undefined);
        socket.destroy();
        return;
      }
      perClient.set(client, open + 1);
      connections.add(socket);
      socket.once('close', () => {
        connections.delete(socket);
        const left = (perClient.get(client) ?? 1) - 1;
        if (left > 0) perClient.set(client, left);
        else perClient.delete(client);
      });
      serveConnection(socket, handler, isClosed, logger);
    });
    server.maxConnections = limits.maxConnections;
    server.on('drop', () => rejected++);
    server.once('error', reject);
    server.listen(port, address, () => {
      server.off('error', reject);
      server.on('error', (error) => logger?.warn({ err: error.message }, 'DNS TCP listener error'));
      resolve({ server, connections, rejected: () => rejected });
    });
  });
}

function serveConnection(socket: Socket, handler: QueryHandler, isClosed: () => boolean, logger: Logger | undefined): void {
  const frames = new TcpFrames();
  const client: DnsClient = { address: socket.remoteAddress ?? '', port: socket.remotePort ?? 0, transport: 'tcp' };
  let outstanding = 0;
  let draining = false;
  const flow = (): void => {
    if (socket.destroyed) return;
    if (outstanding >= MAX_OUTSTANDING || draining) socket.pause();
    else socket.resume();
  };
  const send = (reply: Buffer | undefined): void => {
    if (!reply || socket.destroyed || isClosed()) return;
    if (!socket.write(frame(reply))) draining = true;
  };
  socket.setNoDelay(true);
  socket.setTimeout(TCP_IDLE_MS, () => socket.destroy());
  socket.on('error', () => undefined);
  socket.on('drain', () => {
    draining = false;
    flow();
  });
  socket.on('data', (chunk: Buffer) => {
    for (const message of frames.push(chunk)) {
      let reply: ReturnType<QueryHandler['handle']>;
      try {
        reply = handler.handle(message, client);
      } catch (error) {
        logger?.warn({ err: (error as Error).message }, 'DNS query over TCP failed');
        continue;
      }
      if (!(reply instanceof Promise)) {
        send(reply);
        continue;
      }
      outstanding++;
      reply
        .then(send, (error: Error) => logger?.warn({ err: error.message }, 'DNS query over TCP failed'))
        .finally(() => {
          outstanding--;
          flow();
        });
    }
    flow();
  });
}
