// The agent API socket (agent/api/api-socket.ts) with the JSON-line client
// of the CLI (agent/api/client.ts; the CNI plugin's own, test/unit/cni-pipe.test.ts) and a grpc-js client
// (any gRPC tool) on the same path, in front of a real grpc-js server: both see the
// same replies, shaped by agent.proto; statuses and hostile input come back
// as clear errors and never take the socket down.
import test from 'ava';
import * as grpc from '@grpc/grpc-js';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AgentApiService } from '../../agent/wire/agent-api-service.ts';
import { listenApiSocket, throughProtoCodec, type ApiSocket } from '../../agent/api/api-socket.ts';
import { AgentClient, ApiCallError } from '../../agent/api/client.ts';
import { MAX_LINE_BYTES } from '../../agent/api/json-line.ts';

const dir = mkdtempSync(join(tmpdir(), 'weft-api-socket-'));
const socket = join(dir, 'api.sock');
const seen: Array<[string, unknown]> = [];

/** Fake handlers: Members answers with a sparse member, Token fails as NOT_FOUND, RemoveNode as INVALID_ARGUMENT. */
async function run(method: string, request: unknown): Promise<object> {
  seen.push([method, request]);
  if (method === 'Leave') return new Promise((resolve) => setTimeout(() => resolve({}), 300));
  if (method === 'Members') return { members: [{ nodeId: 'n1', name: 'alpha', incarnation: 7, self: true }] };
  if (method === 'Token') throw Object.assign(new Error('no such token (100%)'), { code: grpc.status.NOT_FOUND });
  if (method === 'RemoveNode') throw Object.assign(new Error('node: must not be empty'), { code: grpc.status.INVALID_ARGUMENT });
  throw Object.assign(new Error(`${method} is not served by this test`), { code: grpc.status.UNIMPLEMENTED });
}

const grpcServer = new grpc.Server();
let listener: ApiSocket;
test.before(async () => {
  const implementation: grpc.UntypedServiceImplementation = {};
  for (const name of Object.keys(AgentApiService.service)) {
    implementation[name] = (call: grpc.ServerUnaryCall<unknown, object>, done: grpc.sendUnaryData<object>) => {
      run(name, call.request).then(
        (reply) => done(null, reply),
        (error: Error & { code: number }) => done({ code: error.code, details: error.message }),
      );
    };
  }
  grpcServer.addService(AgentApiService.service, implementation);
  const injector = grpcServer.createConnectionInjector(grpc.ServerCredentials.createInsecure());
  listener = await listenApiSocket(socket, { http2: (s) => injector.injectConnection(s), json: throughProtoCodec(AgentApiService.service, run) });
});

/** One unary call with a grpc-js client on the socket, as any gRPC tool makes it. */
function grpcCall<T>(method: string, request: object): Promise<T> {
  const client = new AgentApiService(`unix://${socket}`, grpc.credentials.createInsecure());
  const unary = (client as unknown as Record<string, (req: object, done: (error: grpc.ServiceError | null, reply: T) => void) => void>)[method]!;
  return new Promise<T>((resolve, reject) => {
    unary.call(client, request, (error, reply) => {
      client.close();
      if (error) reject(error);
      else resolve(reply);
    });
  });
}

test.after.always(() => {
  listener?.close();
  grpcServer.forceShutdown();
  rmSync(dir, { recursive: true, force: true });
});

/** Sends raw bytes, returns everything the server says before it ends the connection. */
function rawExchange(bytes: Buffer | string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(socket);
    const chunks: Buffer[] = [];
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    s.on('error', reject);
    s.end(bytes);
  });
}

const EXPECTED_MEMBER = { nodeId: 'n1', name: 'alpha', peerId: '', address: '', state: '', incarnation: 7, self: true, connected: false };

test('the CLI client gets the reply shaped by agent.proto: every field, defaults filled in', async (t) => {
  const client = new AgentClient(socket);
  const reply = await client.call<{ members: unknown[] }>('Members');
  client.close();
  t.deepEqual(reply, { members: [EXPECTED_MEMBER] });
});

test('a gRPC caller on the same socket gets the same reply', async (t) => {
  const reply = await grpcCall<{ members: unknown[] }>('Members', {});
  t.deepEqual(reply, { members: [EXPECTED_MEMBER] });
});

test('the request reaches the handler as a gRPC request would: through agent.proto, unknown fields dropped', async (t) => {
  const client = new AgentClient(socket);
  await t.throwsAsync(client.call('RemoveNode', { node: 'shape-check', extra: 'ignored' }));
  await t.throwsAsync(grpcCall('RemoveNode', { node: 'shape-check' }));
  const requests = seen.filter(([, request]) => (request as { node?: string }).node === 'shape-check');
  t.deepEqual(requests, [['RemoveNode', { node: 'shape-check' }], ['RemoveNode', { node: 'shape-check' }]]);
});

test('an error status comes back with its code and message; INVALID_ARGUMENT is the user\'s to fix', async (t) => {
  const client = new AgentClient(socket);
  const notFound = await t.throwsAsync(client.call('Token', { rotate: true }), { instanceOf: ApiCallError });
  t.is(notFound?.code, grpc.status.NOT_FOUND);
  t.is(notFound?.message, 'no such token (100%)');
  t.false(notFound?.badRequest);
  const invalid = await t.throwsAsync(client.call('RemoveNode', { node: '' }), { instanceOf: ApiCallError });
  t.is(invalid?.code, grpc.status.INVALID_ARGUMENT);
  t.true(invalid?.badRequest);
});

test('no agent on the socket: UNAVAILABLE, naming the socket and what to do', async (t) => {
  const missing = join(dir, 'none.sock');
  const error = await t.throwsAsync(new AgentClient(missing).call('Status'), { instanceOf: ApiCallError });
  t.is(error?.code, grpc.status.UNAVAILABLE);
  t.true(error?.message.includes(missing));
  t.regex(error?.message ?? '', /weft agent/);
});

test('a request line that arrives in pieces is read whole', async (t) => {
  const answer = await new Promise<string>((resolve, reject) => {
    const s = connect(socket);
    let text = '';
    s.on('data', (c: Buffer) => (text += c.toString('utf8')));
    s.on('end', () => resolve(text));
    s.on('error', reject);
    s.write('{"method":"Mem');
    setTimeout(() => s.write('bers","request":{}}\n'), 200);
  });
  t.deepEqual(JSON.parse(answer), { code: 0, reply: { members: [EXPECTED_MEMBER] } });
});

test('a client that shuts down its side after the line still gets the answer of a slow call', async (t) => {
  t.deepEqual(JSON.parse(await rawExchange('{"method":"Leave","request":{}}\n')), { code: 0, reply: {} });
});

test('hostile lines get a clear error status, and the socket keeps serving', async (t) => {
  const reply = async (bytes: Buffer | string): Promise<{ code: number; message: string }> => JSON.parse(await rawExchange(bytes)) as { code: number; message: string };
  const notJson = await reply('{not json\n');
  t.is(notJson.code, grpc.status.INVALID_ARGUMENT);
  t.regex(notJson.message, /request is not JSON/);
  t.is((await reply('[1,2]\n')).code, grpc.status.INVALID_ARGUMENT);
  t.like(await reply('{"method":"Members"'), { code: grpc.status.INVALID_ARGUMENT, message: 'the request ended before its newline' });
  t.is((await reply('{"method":"NoSuch","request":{}}\n')).code, grpc.status.UNIMPLEMENTED);
  t.is((await reply('{"method":"__proto__","request":{}}\n')).code, grpc.status.UNIMPLEMENTED);
  const misfit = await reply('{"method":"SandboxCreate","request":{"networks":"app"}}\n');
  t.is(misfit.code, grpc.status.INVALID_ARGUMENT);
  t.regex(misfit.message, /does not fit agent\.proto/);
  t.is((await reply(Buffer.alloc(MAX_LINE_BYTES + 10, 0x20).fill('{', 0, 1))).code, grpc.status.RESOURCE_EXHAUSTED);
  const client = new AgentClient(socket);
  t.deepEqual(await client.call('Members'), { members: [EXPECTED_MEMBER] });
});

test('closing the socket drops a call still open, and the CLI says the agent went away', async (t) => {
  let reached!: () => void;
  const handlerReached = new Promise<void>((resolve) => (reached = resolve));
  const path = join(dir, 'closing.sock');
  const closing = await listenApiSocket(path, {
    http2: (s) => s.destroy(),
    json: () => {
      reached();
      return new Promise<object>(() => undefined); // a call that never finishes on its own
    },
  });
  const call = new AgentClient(path).call('Members');
  await handlerReached;
  closing.close();
  const error = await t.throwsAsync(call, { instanceOf: ApiCallError });
  t.is(error?.code, grpc.status.UNAVAILABLE);
  t.regex(error?.message ?? '', /closed the connection without answering Members/);
});

test('a silent client is dropped after the idle timeout; a call slower than it is still answered', async (t) => {
  const path = join(dir, 'idle.sock');
  const idle = await listenApiSocket(path, {
    http2: (s) => s.destroy(),
    json: () => new Promise<object>((resolve) => setTimeout(() => resolve({ members: [] }), 600)),
  }, 200);
  t.teardown(() => idle.close());
  const silentEnd = await new Promise<string>((resolve, reject) => {
    const s = connect(path);
    s.on('close', () => resolve('closed'));
    s.on('error', reject);
  });
  t.is(silentEnd, 'closed');
  t.deepEqual(await new AgentClient(path).call('Members'), { members: [] });
});
