// The Docker plugin socket as Docker uses it: POSTs over a unix socket with
// bodies and no Content-Type. Hostile requests get an {"Err"} answer and the
// server keeps answering.
import test from 'ava';
import { request } from 'node:http';
import { mkdtempSync, rmSync, statSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { startPluginServer, MAX_BODY_BYTES, type PluginServer } from '../../agent/docker/plugin-server.ts';
import { handshakeHandlers } from '../../agent/docker/plugin-handlers.ts';

const dir = mkdtempSync(join(tmpdir(), 'weft-docker-plugin-'));
const socketPath = join(dir, 'plugins', 'weft.sock');
let server: PluginServer;

test.before(async () => {
  server = await startPluginServer(socketPath, {
    ...handshakeHandlers(),
    'Test.Throw': () => {
      throw new Error('the handler failed');
    },
  }, pino({ level: 'silent' }));
});

test.after.always(async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

function post(path: string, body: string | Buffer, method = 'POST'): Promise<{ status: number; json: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path, method, headers: { 'Content-Length': Buffer.byteLength(body) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown> }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

test.serial('Activate with an empty body (as Docker sends it) names both driver kinds', async (t) => {
  const r = await post('/Plugin.Activate', '');
  t.is(r.status, 200);
  t.deepEqual(r.json, { Implements: ['NetworkDriver', 'IpamDriver'] });
});

test.serial('capabilities and address spaces', async (t) => {
  t.deepEqual((await post('/NetworkDriver.GetCapabilities', '')).json, { Scope: 'local', ConnectivityScope: 'global' });
  t.deepEqual((await post('/IpamDriver.GetCapabilities', 'null')).json, { RequiresMACAddress: false, RequiresRequestReplay: false });
  t.deepEqual((await post('/IpamDriver.GetDefaultAddressSpaces', '{}\n')).json, { LocalDefaultAddressSpace: 'weft', GlobalDefaultAddressSpace: 'weft' });
});

test.serial('the socket is for root only', (t) => {
  t.is(statSync(socketPath).mode & 0o777, 0o600);
});

test.serial('hostile or unknown requests get an Err, and the server keeps answering', async (t) => {
  t.regex(String((await post('/Plugin.Activate', '{not json')).json['Err']), /not JSON/);
  t.regex(String((await post('/Plugin.Activate', '{"x":1}')).json['Err']), /takes no request body/);
  t.regex(String((await post('/NetworkDriver.Nope', '')).json['Err']), /does not implement NetworkDriver\.Nope/);
  t.regex(String((await post('/__proto__', '')).json['Err']), /does not implement __proto__/);
  t.regex(String((await post('/constructor', '')).json['Err']), /does not implement constructor/);
  t.regex(String((await post('/Plugin.Activate', '', 'GET')).json['Err']), /POST only/);
  const thrown = await post('/Test.Throw', '');
  t.is(thrown.status, 500, 'Docker reads an Err only from a non-200 answer');
  t.regex(String(thrown.json['Err']), /the handler failed/);
  const huge = await post('/Plugin.Activate', Buffer.alloc(MAX_BODY_BYTES + 1, 0x20)).catch((error: Error) => ({ status: -1, json: { Err: error.message } }));
  t.true(huge.status === -1 || /over \d+ bytes/.test(String(huge.json['Err'])), JSON.stringify(huge));
  t.deepEqual((await post('/Plugin.Activate', '')).json, { Implements: ['NetworkDriver', 'IpamDriver'] }, 'still serving');
});

test.serial('a second server on a live socket is refused; close removes the socket and the path can be served again', async (t) => {
  await t.throwsAsync(startPluginServer(socketPath, {}, pino({ level: 'silent' })), { message: /already serves the Docker plugin socket/ });
  const other = join(dir, 'stale', 'weft.sock');
  const first = await startPluginServer(other, handshakeHandlers(), pino({ level: 'silent' }));
  await first.close();
  t.false(existsSync(other), 'close removes the socket');
  const again = await startPluginServer(other, handshakeHandlers(), pino({ level: 'silent' }));
  await again.close();
  t.pass();
});
