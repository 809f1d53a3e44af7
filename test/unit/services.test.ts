// The service plane's pure parts: the live backend set, health-check specs,
// service objects from peers, the gateway table, and the health checker
// against real sockets on loopback.
import test from 'ava';
import { createServer, type Server } from 'node:net';
import { liveBackends, type BackendCandidate } from '../../controlplane/services/backends.ts';
import { healthSpec, serviceCreateRequest } from '../../agent/api/schemas.ts';
import { decodeService, encodeService, type ServiceObject } from '../../agent/wire/objects-codec.ts';
import { renderEgressTable } from '../../dataplane/egress.ts';
import { HealthChecker, probe } from '../../agent/services/health.ts';

const NET = 'aaaaaaaaaaaa';
const OTHER = 'bbbbbbbbbbbb';

function candidate(ip: string, overrides: Partial<BackendCandidate> = {}): BackendCandidate {
  return { id: ip.replace(/\./g, '').padStart(12, '0'), networkId: NET, ip, name: '', services: ['web'], unhealthyServices: [], ...overrides };
}

test('the live backend set: same network, names the service, healthy; sorted by address', (t) => {
  const endpoints = [
    candidate('100.64.1.10'),
    candidate('100.64.1.9'),
    candidate('100.64.1.11', { unhealthyServices: ['web'] }),
    candidate('100.64.1.12', { services: ['db'] }),
    candidate('100.64.1.13', { networkId: OTHER }),
  ];
  t.deepEqual(liveBackends({ name: 'web', networkId: NET }, endpoints).map((e) => e.ip), ['100.64.1.9', '100.64.1.10']);
  t.deepEqual(liveBackends({ name: 'nothing', networkId: NET }, endpoints), []);
});

test('each service judges its backends by its own check: failing one service\'s check does not take the endpoint out of another', (t) => {
  const both = candidate('100.64.1.20', { services: ['web', 'api'], unhealthyServices: ['api'] });
  t.deepEqual(liveBackends({ name: 'web', networkId: NET }, [both]).map((e) => e.ip), ['100.64.1.20']);
  t.deepEqual(liveBackends({ name: 'api', networkId: NET }, [both]), []);
});

test('health specs: tcp:PORT and http:PORT/PATH, anything else refused with the accepted forms', (t) => {
  t.deepEqual(healthSpec.parse(''), { kind: '', port: 0, path: '' });
  t.deepEqual(healthSpec.parse('tcp:80'), { kind: 'tcp', port: 80, path: '' });
  t.deepEqual(healthSpec.parse('http:8080/healthz'), { kind: 'http', port: 8080, path: '/healthz' });
  t.deepEqual(healthSpec.parse('http:8080'), { kind: 'http', port: 8080, path: '/' });
  for (const bad of ['udp:53', 'tcp:0', 'tcp:70000', 'tcp:80/x', 'http:80/a b', 'tcp', 'http:/x']) {
    const result = healthSpec.safeParse(bad);
    t.false(result.success, bad);
    if (!result.success) t.regex(result.error.issues[0]!.message, /tcp:PORT or http:PORT\/PATH/);
  }
});

test('service requests: mode defaults to vip; bad mode and ports refused', (t) => {
  const ok = serviceCreateRequest.parse({ name: 'web', network: 'app', ports: [{ port: 80, protocol: 'tcp' }], mode: '', health: '' });
  t.is(ok.mode, 'vip');
  t.false(serviceCreateRequest.safeParse({ name: 'web', network: 'app', ports: [], mode: 'ipvs', health: '' }).success);
  t.false(serviceCreateRequest.safeParse({ name: 'web', network: 'app', ports: [{ port: 0, protocol: 'tcp' }], mode: 'vip', health: '' }).success);
  t.false(serviceCreateRequest.safeParse({ name: 'web', network: 'app', ports: [{ port: 80, protocol: 'sctp' }], mode: 'vip', health: '' }).success);
});

test('service objects round-trip; a peer\'s inconsistent one (dnsrr with a VIP, bad port) is refused', (t) => {
  const service: ServiceObject = {
    id: 'cccccccccccc', name: 'web', networkId: NET, mode: 'vip', vip: '100.64.1.5',
    ports: [{ port: 80, protocol: 'tcp' }, { port: 53, protocol: 'udp' }],
    health: { kind: 'http', port: 8080, path: '/healthz' }, createdBy: 'd'.repeat(32),
    publish: [{ published: 8080, target: 80, protocol: 'tcp', mode: 'ingress' }, { published: 8081, target: 81, protocol: 'udp', mode: 'host' }],
  };
  t.deepEqual(decodeService(encodeService(service)), service);
  const none: ServiceObject = { ...service, mode: 'dnsrr', vip: '', health: { kind: '', port: 0, path: '' }, publish: [] };
  t.deepEqual(decodeService(encodeService(none)), none);
  t.throws(() => decodeService(encodeService({ ...service, mode: 'dnsrr' })), { message: /VIP/ });
  t.throws(() => decodeService(encodeService({ ...service, ports: [{ port: 70_000, protocol: 'tcp' }] })));
  t.throws(() => decodeService(new Uint8Array([0xff, 0xff, 0xff])));
  t.throws(() => decodeService(encodeService({ ...none, publish: service.publish })), { message: /only a vip-mode service publishes ports/ });
  t.throws(() => decodeService(encodeService({ ...service, publish: [...service.publish, { published: 8080, target: 81, protocol: 'tcp', mode: 'host' }] })), { message: /a published port appears twice/ });
});

test('the gateway table: internal-only sandboxes in no_egress, DNS redirected, the host closed to sandboxes otherwise', (t) => {
  const spec = { subnet: '172.31.255.0/24', blocked: ['100.64.0.0/10'] };
  const text = renderEgressTable(spec, { noEgress: ['172.31.255.9', '172.31.255.3', '172.31.255.9'], dnsPort: 41234 }).join('\n');
  t.regex(text, /elements = \{ 172\.31\.255\.3, 172\.31\.255\.9 \}/);
  t.regex(text, /ip daddr 172\.31\.255\.1 meta l4proto \{ tcp, udp \} th dport 53 redirect to :41234/);
  t.regex(text, /iifname "weft_gw" ip saddr @no_egress drop/);
  t.regex(text, /iifname "weft_gw" oifname "weft_gw" drop/);
  t.regex(text, /iifname "weft_gw" drop/);
  const noDns = renderEgressTable(spec, { noEgress: [] }).join('\n');
  t.notRegex(noDns, /redirect/);
  t.notRegex(noDns, /elements/);
});

function listen(handler: Parameters<typeof createServer>[1] = (s) => s.end()): Promise<{ server: Server; port: number }> {
  return new Promise((resolve) => {
    const server = createServer(handler!);
    server.listen(0, '127.0.0.1', () => resolve({ server, port: (server.address() as { port: number }).port }));
  });
}

test('probes: tcp connect and http status against loopback servers', async (t) => {
  const { server, port } = await listen();
  t.true(await probe({ key: 'a', address: '127.0.0.1', check: { kind: 'tcp', port, path: '' } }, 1_000));
  server.close();
  await new Promise((r) => server.once('close', r));
  t.false(await probe({ key: 'a', address: '127.0.0.1', check: { kind: 'tcp', port, path: '' } }, 1_000));
  const http = await listen((socket) => {
    socket.once('data', (data) => {
      const ok = String(data).startsWith('GET /ok ');
      socket.end(`HTTP/1.1 ${ok ? '200 OK' : '503 Unavailable'}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n`);
    });
  });
  t.true(await probe({ key: 'h', address: '127.0.0.1', check: { kind: 'http', port: http.port, path: '/ok' } }, 1_000));
  t.false(await probe({ key: 'h', address: '127.0.0.1', check: { kind: 'http', port: http.port, path: '/bad' } }, 1_000));
  http.server.close();
});

test('the checker: unhealthy until a check passes, unhealthy after 2 failures, healthy again after 1 success', async (t) => {
  const changes: boolean[] = [];
  let { server, port } = await listen();
  const checker = new HealthChecker({ intervalMs: 50, timeoutMs: 200, onChange: (_key, healthy) => changes.push(healthy) });
  t.teardown(() => checker.stop());
  checker.update([{ key: 'e1', address: '127.0.0.1', check: { kind: 'tcp', port, path: '' } }]);
  t.is(checker.healthy('e1'), false);
  await waitFor(() => changes.length === 1);
  t.deepEqual(changes, [true]);
  server.close();
  await waitFor(() => changes.length === 2);
  t.deepEqual(changes, [true, false]);
  ({ server } = await new Promise<{ server: Server; port: number }>((resolve) => {
    const s = createServer((c) => c.end());
    s.listen(port, '127.0.0.1', () => resolve({ server: s, port }));
  }));
  await waitFor(() => changes.length === 3);
  t.deepEqual(changes, [true, false, true]);
  checker.update([]);
  t.is(checker.healthy('e1'), undefined);
  server.close();
});

async function waitFor(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}
