// The Docker remote-plugin endpoint: node:http on a unix socket. Docker POSTs
// a JSON body (often without a Content-Type) to /<Interface>.<Method> and
// reads a JSON answer; a failure is answered {"Err": "..."} with status 500,
// the only form Docker's plugin client reads as an error for both the driver
// and the IPAM calls (a 200 is decoded as a result). Bodies are
// bounded and every handler's failure becomes an Err: a hostile or broken
// caller can never take the agent down.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { claimSocketPath } from '../../lib/unix-socket.ts';
import { chmodSync, existsSync, mkdirSync, unlinkSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Logger } from 'pino';

/** Docker's own requests are a few hundred bytes; anything near this is not Docker. */
export const MAX_BODY_BYTES = 64 * 1024;

export const PLUGIN_CONTENT_TYPE = 'application/vnd.docker.plugins.v1.2+json';

/** What a handler may ask of the call it serves. */
export interface PluginCall {
  /**
   * Runs `undo` when the answer cannot be delivered because the caller hung up
   * first: Docker's plugin client gives up on a slow call (its timeout) and
   * retries, so an address handed out in a lost answer would never be released.
   */
  onUndelivered(undo: () => void | Promise<void>): void;
}

/** A handler gets the parsed body (undefined when empty) and returns the answer object. */
export type PluginHandler = (body: unknown, call: PluginCall) => object | Promise<object>;

export class PluginError extends Error {
  override name = 'PluginError';
}

export interface PluginServer {
  readonly socketPath: string;
  close(): Promise<void>;
}

/** Listens on socketPath (its directory is created; a stale socket is replaced, a live one refused). */
export async function startPluginServer(socketPath: string, handlers: Readonly<Record<string, PluginHandler>>, logger: Logger): Promise<PluginServer> {
  await refuseIfLive(socketPath);
  mkdirSync(dirname(socketPath), { recursive: true, mode: 0o755 });
  const log = logger.child({ component: 'docker-plugin' });
  const server = createServer((request, response) => {
    void serve(request, response, handlers, log);
  });
  // Slow or stuck clients must not pile up.
  server.requestTimeout = 30_000;
  server.headersTimeout = 10_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => {
      server.off('error', reject);
      resolve();
    });
  });
  // Only root (dockerd) may talk to it: the answers move interfaces and hand out addresses.
  chmodSync(socketPath, 0o600);
  server.on('error', (error) => log.error({ err: error.message }, 'docker plugin socket error'));
  return { socketPath, close: () => closeServer(server, socketPath) };
}

async function serve(request: IncomingMessage, response: ServerResponse, handlers: Readonly<Record<string, PluginHandler>>, log: Logger): Promise<void> {
  const method = (request.url ?? '').replace(/^\//, '');
  try {
    if (request.method !== 'POST') throw new PluginError(`the weft plugin answers POST only, not ${request.method ?? '?'}`);
    const handler = Object.hasOwn(handlers, method) ? handlers[method] : undefined;
    if (!handler) throw new PluginError(`the weft plugin does not implement ${method || '(no method)'}`);
    const body = parseBody(await readBody(request));
    const undos: Array<() => void | Promise<void>> = [];
    const answer = await handler(body, { onUndelivered: (undo) => undos.push(undo) });
    log.debug({ method }, 'docker plugin call');
    if (await reply(response, 200, answer)) return;
    if (undos.length > 0) log.warn({ method }, 'the caller hung up before the answer: undoing the call');
    for (const undo of undos) await Promise.resolve().then(undo).catch((e: Error) => log.error({ method, err: e.message }, 'cannot undo an undelivered call'));
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    log.info({ method, err: message }, 'docker plugin call refused');
    void reply(response, 500, { Err: message });
  }
}

function readBody(request: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    request.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        reject(new PluginError(`request body over ${MAX_BODY_BYTES} bytes`));
        request.destroy();
        return;
      }
      chunks.push(chunk);
    });
    request.once('end', () => resolve(Buffer.concat(chunks)));
    request.once('error', reject);
  });
}

function parseBody(raw: Buffer): unknown {
  const text = raw.toString('utf8').trim();
  if (text === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new PluginError(`request body is not JSON: ${(error as Error).message}`);
  }
}

/** Writes the answer; resolves false when it could not be handed to the caller (the connection was gone). */
function reply(response: ServerResponse, status: number, answer: object): Promise<boolean> {
  if (response.headersSent || response.destroyed) return Promise.resolve(false);
  const text = JSON.stringify(answer);
  return new Promise((resolve) => {
    response.once('finish', () => resolve(true));
    response.once('close', () => resolve(response.writableFinished));
    response.writeHead(status, { 'Content-Type': PLUGIN_CONTENT_TYPE, 'Content-Length': Buffer.byteLength(text) });
    response.end(text);
  });
}

function refuseIfLive(socketPath: string): Promise<void> {
  return claimSocketPath(socketPath, () => new Error(`something already serves the Docker plugin socket ${socketPath}; stop it or give this agent another --docker-plugin-dir ('' turns the plugin off)`));
}

function closeServer(server: Server, socketPath: string): Promise<void> {
  return new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  }).then(() => {
    // node removes the socket file on close; a kill -9 leaves it, and the next start replaces it.
    if (existsSync(socketPath)) unlinkSync(socketPath);
  });
}
