// The CNI plugin's one-call client (agent/api/http2-call.ts) encodes and decodes
// messages with protobufjs directly (agent/api/methods.ts), the server with
// @grpc/proto-loader: both must agree on every method, in both directions.
import test from 'ava';
import { API_METHODS } from '../../agent/api/methods.ts';
import { AgentApiService } from '../../agent/wire/agent-api-service.ts';

const server = AgentApiService.service;

test('the client knows exactly the methods the server serves, at the same paths', (t) => {
  t.deepEqual([...API_METHODS.keys()].sort(), Object.keys(server).sort());
  for (const [name, method] of API_METHODS) t.is(method.path, server[name]!.path);
});

const REQUESTS: Record<string, object> = {
  Init: { defaultAddrPool: '100.64.0.0/10' },
  Join: { token: 'WEFT-1-AAAA-BBBB', address: '198.18.0.1:2377' },
  Token: { rotate: true },
  NetworkCreate: { name: 'app', subnet: '', vni: 16_777_215, internal: true },
  SandboxCreate: { networks: ['app', 'db'], name: 'web', aliases: ['www'], netns: '', command: ['sleep', '1'], services: ['web'] },
  ServiceCreate: { name: 'web', network: 'app', ports: [{ port: 80, protocol: 'tcp' }, { port: 53, protocol: 'udp' }], mode: 'vip', health: 'http:80/healthz' },
};

const REPLIES: Record<string, object> = {
  Members: { members: [{ nodeId: 'ab'.repeat(16), name: 'h1', peerId: '12D3Koo', address: '198.18.0.1', state: 'alive', incarnation: 2 ** 40, self: true, connected: false }] },
  Status: { nodeId: '', name: 'h1', inCluster: false, members: 0, gossipPort: 7946, listenAddr: '0.0.0.0:2377', advertiseAddr: '198.18.0.1' },
  SandboxCreate: { id: 's1', netns: 'weft-s1', pid: 4242, endpoints: [{ id: 'e1', name: 'web', network: 'app', ip: '100.64.0.2', aliases: ['www'], services: [], unhealthyServices: ['web'] }] },
};

for (const name of API_METHODS.keys()) {
  test(`${name}: the client's request is what the server decodes, the server's reply what the client decodes`, (t) => {
    const client = API_METHODS.get(name)!;
    const definition = server[name]!;
    const request = REQUESTS[name] ?? {};
    t.deepEqual(definition.requestDeserialize(client.serialize(request)), definition.requestDeserialize(definition.requestSerialize(request)));
    const reply = REPLIES[name] ?? {};
    const bytes = definition.responseSerialize(reply);
    t.deepEqual(client.deserialize(bytes), definition.responseDeserialize(bytes));
  });
}
