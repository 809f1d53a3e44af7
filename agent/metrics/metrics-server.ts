// The opt-in HTTP endpoint (--metrics-addr): GET /metrics (Prometheus text
// format), /healthz (liveness: the process answers) and /readyz (joined,
// synced, data plane reconciled; 503 with the failing checks otherwise).
// Plain node:http: three read-only paths need no framework. Anything else is
// 404 (unknown path) or 405 (a method other than GET/HEAD), so a scanner
// learns nothing and changes nothing.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { WeftMetrics } from './exposition.ts';
import type { MetricsReading } from './snapshot.ts';

export interface MetricsServer {
  readonly address: string;
  readonly port: number;
  close(): Promise<void>;
}

export async function startMetricsServer(listenAddr: string, read: () => MetricsReading, log: Logger): Promise<MetricsServer> {
  const metrics = new WeftMetrics();
  const server = createServer((request, response) => {
    void serve(request, response, metrics, read).catch((error: Error) => {
      log.warn({ err: error.message, path: request.url }, 'metrics request failed');
      if (!response.headersSent) response.writeHead(500, { 'content-type': 'text/plain' });
      response.end('internal error\n');
    });
  });
  // Scrapes are one request every few seconds; idle keep-alive sockets should not pile up.
  server.keepAliveTimeout = 5_000;
  server.headersTimeout = 10_000;
  server.requestTimeout = 10_000;
  const [host, port] = splitAddr(listenAddr);
  await listen(server, host, port, listenAddr);
  const bound = server.address();
  const boundPort = typeof bound === 'object' && bound ? bound.port : port;
  log.info({ address: `${host}:${boundPort}` }, 'metrics, /healthz and /readyz listening');
  return {
    address: host,
    port: boundPort,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}

async function serve(request: IncomingMessage, response: ServerResponse, metrics: WeftMetrics, read: () => MetricsReading): Promise<void> {
  const path = (request.url ?? '/').split('?')[0];
  if (request.method !== 'GET' && request.method !== 'HEAD') return reply(response, 405, 'only GET and HEAD are served\n', { allow: 'GET, HEAD' });
  if (path === '/healthz') return reply(response, 200, 'ok\n');
  if (path === '/readyz') {
    const readiness = read().readiness;
    const failing = Object.entries(readiness).filter(([, ok]) => !ok).map(([check]) => check);
    return failing.length === 0 ? reply(response, 200, 'ready\n') : reply(response, 503, `not ready: ${failing.join(', ')}\n`);
  }
  if (path === '/metrics') return reply(response, 200, await metrics.render(read()), { 'content-type': metrics.contentType });
  return reply(response, 404, 'not found: try /metrics, /healthz or /readyz\n');
}

function reply(response: ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
  response.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store', ...headers });
  response.end(body);
}

function splitAddr(listenAddr: string): [string, number] {
  const at = listenAddr.lastIndexOf(':');
  return [listenAddr.slice(0, at), Number(listenAddr.slice(at + 1))];
}

function listen(server: Server, host: string, port: number, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException): void => {
      reject(new Error(`cannot listen for metrics on ${what}: ${error.code === 'EADDRINUSE' ? 'the address is in use; pick another port with --metrics-addr' : error.message}`));
    };
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
}
