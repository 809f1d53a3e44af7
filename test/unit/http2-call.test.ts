// The CNI plugin's one-call client (agent/api/http2-call.ts) against a real
// grpc-js server serving the agent API definition on a unix socket: replies,
// error statuses with their messages, no server, and gRPC framing.
import test from 'ava';
import * as grpc from '@grpc/grpc-js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AgentApiService } from '../../agent/wire/agent-api-service.ts';
import { callAgentOnce, frameMessage, unframeMessage } from '../../agent/api/http2-call.ts';
import { ApiCallError } from '../../agent/api/call-error.ts';

const dir = mkdtempSync(join(tmpdir(), 'weft-http2-call-'));
const socket = join(dir, 'api.sock');
const server = new grpc.Server();
const seen: unknown[] = [];

test.before(async () => {
  server.addService(AgentApiService.service, {
    ContainerCheck: (call: grpc.ServerUnaryCall<unknown, object>, done: grpc.sendUnaryData<object>) => {
      seen.push(call.request);
      done(null, { sandbox: { id: 's1', netns: '/run/netns/c', interfaces: [{ network: 'blue', ifname: 'eth0', mac: '02:00:00:00:00:01', ip: '100.64.0.9', prefixLength: 24, gateway: '100.64.0.1' }] }, problems: ['MTU 1400, want 1450'] });
    },
    ContainerDetach: (_call: unknown, done: grpc.sendUnaryData<object>) => done({ code: grpc.status.NOT_FOUND, details: 'network "nosuch" does not exist: create it with `weft network create` (100%)' }),
  });
  await new Promise<void>((resolve, reject) => server.bindAsync(`unix://${socket}`, grpc.ServerCredentials.createInsecure(), (error) => (error ? reject(error) : resolve())));
});

test.after.always(async () => {
  await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
  rmSync(dir, { recursive: true, force: true });
});

test('a reply decodes as the CLI client decodes it, and the request reaches the server intact', async (t) => {
  const reply = await callAgentOnce<{ sandbox: { interfaces: Array<{ ip: string; prefixLength: number }> }; problems: string[] }>(socket, 'ContainerCheck', { containerId: 'abc', ifname: 'eth0' }, 10_000);
  t.is(reply.sandbox.interfaces[0]?.ip, '100.64.0.9');
  t.is(reply.sandbox.interfaces[0]?.prefixLength, 24);
  t.deepEqual(reply.problems, ['MTU 1400, want 1450']);
  t.deepEqual(seen, [{ containerId: 'abc', ifname: 'eth0' }]);
});

test('an error status comes back with its code and its message decoded', async (t) => {
  const error = await t.throwsAsync(callAgentOnce(socket, 'ContainerDetach', { containerId: 'abc', ifname: 'eth0' }, 10_000), { instanceOf: ApiCallError });
  t.is(error?.code, grpc.status.NOT_FOUND);
  t.is(error?.message, 'network "nosuch" does not exist: create it with `weft network create` (100%)');
});

test('a method the server does not serve is UNIMPLEMENTED, not a hang', async (t) => {
  const error = await t.throwsAsync(callAgentOnce(socket, 'Status', {}, 10_000), { instanceOf: ApiCallError });
  t.is(error?.code, grpc.status.UNIMPLEMENTED);
});

test('no server on the socket is UNAVAILABLE naming the socket', async (t) => {
  const missing = join(dir, 'none.sock');
  const error = await t.throwsAsync(callAgentOnce(missing, 'Status', {}, 10_000), { instanceOf: ApiCallError });
  t.is(error?.code, grpc.status.UNAVAILABLE);
  t.true(error?.message.includes(missing));
});

test('framing: one uncompressed message with its length; anything else is refused', (t) => {
  const framed = frameMessage(Buffer.from([1, 2, 3]));
  t.deepEqual([...framed], [0, 0, 0, 0, 3, 1, 2, 3]);
  t.deepEqual([...unframeMessage(framed)], [1, 2, 3]);
  t.throws(() => unframeMessage(Buffer.from([0, 0, 0])), { message: /not a gRPC message/ });
  t.throws(() => unframeMessage(Buffer.from([1, 0, 0, 0, 0])), { message: /compressed/ });
  t.throws(() => unframeMessage(Buffer.from([0, 0, 0, 0, 4, 1])), { message: /does not hold one message/ });
});
