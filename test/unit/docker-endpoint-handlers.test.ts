// The Docker plugin's address and endpoint calls without a dockerd: each
// endpoint address is handed out from the allocator once, freed exactly once
// (a repeated or unknown ReleaseAddress is a no-op), survives a restart
// (docker-plugin.json), and hostile bodies are refused before anything is done.
// An address whose answer never reached Docker, or that no endpoint uses for
// the grace period, is released once.
import test, { type ExecutionContext } from 'ava';
import { connect } from 'node:net';
import { createServer } from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import type { Overlay } from '../../agent/overlay/overlay.ts';
import { networkHandlers } from '../../agent/docker/network-handlers.ts';
import { endpointHandlers } from '../../agent/docker/endpoint-handlers.ts';
import { DockerState } from '../../agent/docker/docker-state.ts';
import { ContainerEndpoints } from '../../agent/docker/container-endpoints.ts';
import { startPluginServer, type PluginHandler } from '../../agent/docker/plugin-server.ts';
import { OrphanAddresses } from '../../agent/docker/held-addresses.ts';

const NETWORK = { id: 'n1', name: 'blue', subnet: '100.64.0.0/24', gateway: '100.64.0.1', vni: 7, internal: false };
const DOCKER_NET = 'a'.repeat(64);
const ENDPOINT = 'b'.repeat(64);

/** An overlay with one network and an allocator that counts (and takes allocDelayMs per address). */
function fakeOverlay(allocDelayMs = 0) {
  const allocated = new Set<string>();
  const freed: string[] = [];
  let next = 2;
  const overlay = {
    networks: { byId: (id: string) => (id === NETWORK.id ? NETWORK : undefined), list: () => [NETWORK] },
    services: { byName: () => undefined },
    containerLinks: {
      allocateAddress: async () => {
        await new Promise((resolve) => setTimeout(resolve, allocDelayMs));
        const ip = `100.64.0.${next++}`;
        allocated.add(ip);
        return ip;
      },
      freeAddress: async (_network: string, ip: string) => {
        freed.push(ip);
        allocated.delete(ip);
      },
    },
  } as unknown as Overlay;
  return { overlay, allocated, freed };
}

function setUp(dataDir: string, overlay: Overlay, orphans?: OrphanAddresses): Record<string, PluginHandler> & { endpoints: ContainerEndpoints } {
  const state = new DockerState(dataDir);
  const endpoints = new ContainerEndpoints(() => overlay, state, '', pino({ level: 'silent' }), { orphans });
  return Object.assign({ ...networkHandlers(() => overlay, state), ...endpointHandlers(() => overlay, state, endpoints) }, { endpoints });
}

/** A call whose answer always arrives (undelivered answers are tested through the real socket). */
const DELIVERED = { onUndelivered: () => undefined };

async function call(handlers: Record<string, PluginHandler>, method: string, body: unknown): Promise<Record<string, unknown>> {
  return (await handlers[method]!(body, DELIVERED)) as Record<string, unknown>;
}

const createNetwork = { NetworkID: DOCKER_NET, Options: {}, IPv4Data: [{ AddressSpace: 'weft', Pool: NETWORK.subnet, Gateway: '100.64.0.1/24' }] };

test('an endpoint address comes from the allocator and is freed exactly once, also after a restart', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'weft-docker-ipam-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const { overlay, allocated, freed } = fakeOverlay();
  let handlers = setUp(dir, overlay);
  const answer = await call(handlers, 'IpamDriver.RequestAddress', { PoolID: NETWORK.id, Address: '', Options: null });
  t.is(answer['Address'], '100.64.0.2/24');
  t.deepEqual([...allocated], ['100.64.0.2']);
  handlers = setUp(dir, overlay); // an agent restart: the record is read back
  await call(handlers, 'IpamDriver.ReleaseAddress', { PoolID: NETWORK.id, Address: '100.64.0.2' });
  await call(handlers, 'IpamDriver.ReleaseAddress', { PoolID: NETWORK.id, Address: '100.64.0.2' });
  await call(handlers, 'IpamDriver.ReleaseAddress', { PoolID: NETWORK.id, Address: '100.64.0.77' });
  await call(handlers, 'IpamDriver.ReleaseAddress', { PoolID: NETWORK.id, Address: NETWORK.gateway });
  t.deepEqual(freed, ['100.64.0.2'], 'freed once; a repeat, an address never handed out and the gateway are no-ops');
  await t.throwsAsync(call(handlers, 'IpamDriver.RequestAddress', { PoolID: NETWORK.id, Address: '100.64.0.9', Options: null }), { message: /--ip 100\.64\.0\.9 is not supported/ });
});

test('endpoints need a recorded network and a weft address; hostile Join bodies are refused', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'weft-docker-ep-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const { overlay } = fakeOverlay();
  const handlers = setUp(dir, overlay);
  const endpoint = (address: string, options: object = {}) => ({ NetworkID: DOCKER_NET, EndpointID: ENDPOINT, Interface: { Address: address, AddressIPv6: '', MacAddress: '' }, Options: options });
  await t.throwsAsync(call(handlers, 'NetworkDriver.CreateEndpoint', endpoint('100.64.0.2/24')), { message: /is not known to this weft agent/ });
  await call(handlers, 'NetworkDriver.CreateNetwork', createNetwork);
  await t.throwsAsync(call(handlers, 'NetworkDriver.CreateEndpoint', endpoint('100.64.0.2/24')), { message: /was not handed out by weft/ });
  await call(handlers, 'IpamDriver.RequestAddress', { PoolID: NETWORK.id, Address: '', Options: null });
  await t.throwsAsync(call(handlers, 'NetworkDriver.CreateEndpoint', endpoint('100.64.0.2/24', { 'weft.services': 'nosuch' })), { message: /no weft service "nosuch"/ });
  await t.throwsAsync(call(handlers, 'NetworkDriver.CreateEndpoint', endpoint('100.64.0.2/24', { 'weft.name': '-bad' })), { message: /weft\.name=-bad/ });
  const created = await call(handlers, 'NetworkDriver.CreateEndpoint', endpoint('100.64.0.2/24', { 'weft.name': 'web2' }));
  t.deepEqual(created, { Interface: { MacAddress: '02:42:64:40:00:02' } });
  for (const key of ['/run/docker/netns/../../etc/x', 'relative/path', '/run/docker/netns/a b', `/${'x'.repeat(300)}`]) {
    await t.throwsAsync(call(handlers, 'NetworkDriver.Join', { NetworkID: DOCKER_NET, EndpointID: ENDPOINT, SandboxKey: key, Options: {} }), { message: /Join: invalid request \(SandboxKey/ }, key);
  }
  await t.throwsAsync(call(handlers, 'NetworkDriver.Join', { NetworkID: 'x', EndpointID: ENDPOINT, SandboxKey: '/run/docker/netns/abc' }), { message: /NetworkID: must be a 64-hex-digit Docker ID/ });
  // Leave and DeleteEndpoint of endpoints weft never joined, or no longer knows, succeed.
  t.deepEqual(await call(handlers, 'NetworkDriver.Leave', { NetworkID: DOCKER_NET, EndpointID: ENDPOINT }), {});
  t.deepEqual(await call(handlers, 'NetworkDriver.DeleteEndpoint', { NetworkID: DOCKER_NET, EndpointID: ENDPOINT }), {});
  t.deepEqual(await call(handlers, 'NetworkDriver.DeleteEndpoint', { NetworkID: DOCKER_NET, EndpointID: ENDPOINT }), {});
});

test('Docker hangs up on a slow RequestAddress and retries with an empty body: the first address is released, the retry gets a clear error', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'weft-docker-retry-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const { overlay, allocated, freed } = fakeOverlay(300);
  const { endpoints: _, ...handlers } = setUp(dir, overlay);
  const socketPath = join(dir, 'weft.sock');
  const server = await startPluginServer(socketPath, handlers, pino({ level: 'silent' }));
  t.teardown(() => server.close());
  // What Docker's plugin client does on its timeout: the connection closes before the answer.
  const body = JSON.stringify({ PoolID: NETWORK.id, Address: '', Options: null });
  await new Promise<void>((resolve, reject) => {
    const socket = connect(socketPath, () => {
      socket.write(`POST /IpamDriver.RequestAddress HTTP/1.1\r\nHost: plugin\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
      setTimeout(() => socket.destroy(), 50);
    });
    socket.on('close', () => resolve());
    socket.on('error', reject);
  });
  const retry = await fetchLike(socketPath, 'IpamDriver.RequestAddress', '');
  t.is(retry.status, 500);
  t.regex(String(retry.json['Err']), /empty request \(Docker retried a call that had timed out/);
  const deadline = Date.now() + 30_000;
  while (freed.length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
  t.deepEqual(freed, ['100.64.0.2'], 'the address in the lost answer went back to the allocator');
  t.is(allocated.size, 0);
  const state = new DockerState(dir);
  t.deepEqual([...state.addresses], [], 'and is no longer recorded as Docker\'s');
});

test('an address no endpoint uses for the grace period is released once; one an endpoint uses is kept', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'weft-docker-orphan-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const { overlay, freed } = fakeOverlay();
  let now = 0;
  const handlers = setUp(dir, overlay, new OrphanAddresses(60_000));
  await call(handlers, 'NetworkDriver.CreateNetwork', createNetwork);
  await call(handlers, 'IpamDriver.RequestAddress', { PoolID: NETWORK.id, Address: '', Options: null }); // answer lost after delivery
  await call(handlers, 'IpamDriver.RequestAddress', { PoolID: NETWORK.id, Address: '', Options: null });
  await call(handlers, 'NetworkDriver.CreateEndpoint', { NetworkID: DOCKER_NET, EndpointID: ENDPOINT, Interface: { Address: '100.64.0.3/24', AddressIPv6: '', MacAddress: '' }, Options: {} });
  const realNow = Date.now;
  t.teardown(() => { Date.now = realNow; });
  Date.now = () => now;
  await handlers.endpoints.sweep();
  now = 59_000;
  await handlers.endpoints.sweep();
  t.deepEqual(freed, [], 'not before the grace period');
  now = 61_000;
  await handlers.endpoints.sweep();
  await handlers.endpoints.sweep();
  t.deepEqual(freed, ['100.64.0.2'], 'the unused address is released once; the endpoint\'s is kept');
  await call(handlers, 'IpamDriver.ReleaseAddress', { PoolID: NETWORK.id, Address: '100.64.0.2' });
  t.deepEqual(freed, ['100.64.0.2'], 'a late ReleaseAddress is a no-op');
});

function fetchLike(socketPath: string, method: string, body: string): Promise<{ status: number; json: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const socket = connect(socketPath, () => socket.end(`POST /${method} HTTP/1.1\r\nHost: plugin\r\nConnection: close\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`));
    let text = '';
    socket.on('data', (d: Buffer) => { text += d.toString('utf8'); });
    socket.on('end', () => {
      const [head, payload] = text.split('\r\n\r\n');
      resolve({ status: Number(head?.split(' ')[1]), json: JSON.parse(payload ?? '{}') as Record<string, unknown> });
    });
    socket.on('error', reject);
  });
}

/** An overlay whose container links the test drives: what moved() answers, whether adoption fails, which Join names are back home. */
function linkOverlay(dir: string) {
  const base = fakeOverlay();
  const calls: string[] = [];
  const links = {
    moved: undefined as string | undefined,
    adoptFails: false,
    backHome: [] as string[],
    /** The overlay's own record of adopted sandboxes (what survives a kill -9 of the agent). */
    local: [] as Array<{ attachments: Array<{ containerId: string; ifname: string; addressHeld: boolean }> }>,
  };
  Object.assign(base.overlay, {
    containerLinks: {
      ...(base.overlay.containerLinks as object),
      prepare: async () => void calls.push('prepare'),
      moved: async () => links.moved,
      remove: async () => void calls.push('remove'),
      backHome: async (names: string[]) => names.filter((n) => links.backHome.includes(n)),
    },
    localSandboxes: () => links.local,
    createSandbox: async (request: { netns: string }) => {
      calls.push('adopt');
      // The namespace is removed under the adoption (the container died at once).
      if (links.adoptFails) throw new Error(`${request.netns} is not a network namespace`);
      return {};
    },
    detachContainer: async () => void calls.push('detach'),
  });
  const netnsFile = join(dir, 'netns-1');
  writeFileSync(netnsFile, '');
  return { ...base, calls, links, netnsFile };
}

async function joinedEndpoint(t: ExecutionContext, name: string) {
  const dir = mkdtempSync(join(tmpdir(), `weft-docker-${name}-`));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const fake = linkOverlay(dir);
  const handlers = setUp(dir, fake.overlay);
  t.teardown(() => handlers.endpoints.stop());
  await call(handlers, 'NetworkDriver.CreateNetwork', createNetwork);
  await call(handlers, 'IpamDriver.RequestAddress', { PoolID: NETWORK.id, Address: '', Options: null });
  await call(handlers, 'NetworkDriver.CreateEndpoint', { NetworkID: DOCKER_NET, EndpointID: ENDPOINT, Interface: { Address: '100.64.0.2/24', AddressIPv6: '', MacAddress: '' }, Options: { 'weft.name': 'c1' } });
  const joined = await call(handlers, 'NetworkDriver.Join', { NetworkID: DOCKER_NET, EndpointID: ENDPOINT, SandboxKey: fake.netnsFile, Options: {} });
  return { ...fake, handlers, joinName: (joined['InterfaceName'] as { SrcName: string }).SrcName };
}

async function until(what: string, check: () => boolean): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

test('a namespace removed under a container being adopted: the sweep releases its link, endpoint and address once', async (t) => {
  const { handlers, links, calls, freed, netnsFile } = await joinedEndpoint(t, 'vanished');
  links.adoptFails = true;
  rmSync(netnsFile);
  links.moved = 'eth0';
  await until('the adoption to fail', () => calls.includes('adopt'));
  await new Promise((resolve) => setTimeout(resolve, 100));
  await handlers.endpoints.sweep();
  t.deepEqual(calls.filter((c) => c !== 'adopt'), ['prepare', 'remove'], 'the prepared link is removed');
  t.deepEqual(freed, ['100.64.0.2'], 'the address is released');
  await handlers.endpoints.sweep();
  await call(handlers, 'NetworkDriver.Leave', { NetworkID: DOCKER_NET, EndpointID: ENDPOINT });
  await call(handlers, 'NetworkDriver.DeleteEndpoint', { NetworkID: DOCKER_NET, EndpointID: ENDPOINT });
  await call(handlers, 'IpamDriver.ReleaseAddress', { PoolID: NETWORK.id, Address: '100.64.0.2' });
  t.deepEqual(freed, ['100.64.0.2'], 'once: a later sweep, Leave, DeleteEndpoint and ReleaseAddress are no-ops');
  t.deepEqual(calls.filter((c) => c !== 'adopt'), ['prepare', 'remove']);
});

test('an adopted container whose interface Docker moved back out is released while its namespace file lingers', async (t) => {
  const { handlers, links, calls, freed, joinName } = await joinedEndpoint(t, 'back');
  t.is(joinName, `wd${ENDPOINT.slice(0, 12)}`);
  links.moved = 'eth0';
  await until('the adoption', () => calls.includes('adopt'));
  await new Promise((resolve) => setTimeout(resolve, 100));
  await handlers.endpoints.sweep();
  t.deepEqual(freed, [], 'a running container is kept');
  links.backHome = [joinName];
  await handlers.endpoints.sweep();
  t.deepEqual(calls, ['prepare', 'adopt', 'detach'], 'its attachment is detached');
  t.deepEqual(freed, ['100.64.0.2'], 'and its address released');
  await handlers.endpoints.sweep();
  t.deepEqual(freed, ['100.64.0.2'], 'once');
});

test('killed after the overlay adopted a container but before the plugin saved it: after the restart it is adopted, and released once its namespace is gone', async (t) => {
  const { handlers, links, calls, freed, netnsFile, overlay } = await joinedEndpoint(t, 'restart');
  handlers.endpoints.stop(); // kill -9: the wait for the move dies with the agent
  links.local = [{ attachments: [{ containerId: ENDPOINT, ifname: 'eth0', addressHeld: true }] }];
  rmSync(netnsFile); // docker rm -f while the agent was down
  const dir = join(netnsFile, '..');
  const restarted = setUp(dir, overlay);
  t.teardown(() => restarted.endpoints.stop());
  restarted.endpoints.start();
  await until('the release', () => freed.length > 0);
  t.deepEqual(calls, ['prepare', 'detach'], 'its attachment is detached, not waited for 120 s');
  t.deepEqual(freed, ['100.64.0.2']);
  t.deepEqual([...new DockerState(dir).endpoints.keys()], [], 'and the endpoint forgotten');
});

test('a joined endpoint whose container went while the agent was down is released once nobody waits for it', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'weft-docker-gone-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const { overlay, freed } = fakeOverlay();
  const removed: string[] = [];
  Object.assign((overlay as unknown as { containerLinks: object }).containerLinks, {
    moved: async () => undefined, // the namespace is gone: the interface never shows up
    remove: async (_network: string, sandboxKey: string) => void removed.push(sandboxKey),
  });
  const handlers = setUp(dir, overlay);
  await call(handlers, 'NetworkDriver.CreateNetwork', createNetwork);
  await call(handlers, 'IpamDriver.RequestAddress', { PoolID: NETWORK.id, Address: '', Options: null });
  await call(handlers, 'NetworkDriver.CreateEndpoint', { NetworkID: DOCKER_NET, EndpointID: ENDPOINT, Interface: { Address: '100.64.0.2/24', AddressIPv6: '', MacAddress: '' }, Options: {} });
  // Joined, then the agent died before dockerd moved the interface; Docker's Leave,
  // DeleteEndpoint and ReleaseAddress found no agent, and the container is gone.
  const state = new DockerState(dir);
  state.endpoints.get(ENDPOINT)!.sandboxKey = join(dir, 'netns-of-a-removed-container');
  state.save();
  const restarted = new ContainerEndpoints(() => overlay, new DockerState(dir), '', pino({ level: 'silent' }), { moveDeadlineMs: 300 });
  restarted.start();
  t.teardown(() => restarted.stop());
  const read = () => new DockerState(dir);
  await restarted.sweep();
  t.is(read().endpoints.size, 1, 'kept while the agent still waits for dockerd to move the interface');
  await new Promise((resolve) => setTimeout(resolve, 600));
  await restarted.sweep();
  t.is(read().endpoints.size, 0);
  t.is(read().addresses.size, 0);
  t.deepEqual(freed, ['100.64.0.2']);
  t.deepEqual(removed, [join(dir, 'netns-of-a-removed-container')]);
});

test('a container dockerd cannot name yet (it is restoring its containers) is attached at once and named once dockerd lists it', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'weft-docker-naming-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const fake = linkOverlay(dir);
  const adoptedAs: string[] = [];
  const named: string[] = [];
  Object.assign(fake.overlay, {
    createSandbox: async (request: { name: string }) => void adoptedAs.push(request.name),
    nameContainer: async (containerId: string, ifname: string, name: string) => {
      named.push(`${containerId === ENDPOINT ? 'endpoint' : containerId} ${ifname} ${name}`);
      return true;
    },
  });
  const socketPath = join(dir, 'docker.sock');
  const state = new DockerState(dir);
  const nameWaits = { beforeAttach: { unreachableMs: 200, unlistedMs: 100 }, afterAttach: { unreachableMs: 30_000, unlistedMs: 1_000 } };
  const endpoints = new ContainerEndpoints(() => fake.overlay, state, socketPath, pino({ level: 'silent' }), { nameWaits });
  t.teardown(() => endpoints.stop());
  const handlers = { ...networkHandlers(() => fake.overlay, state), ...endpointHandlers(() => fake.overlay, state, endpoints) };
  await call(handlers, 'NetworkDriver.CreateNetwork', createNetwork);
  await call(handlers, 'IpamDriver.RequestAddress', { PoolID: NETWORK.id, Address: '', Options: null });
  await call(handlers, 'NetworkDriver.CreateEndpoint', { NetworkID: DOCKER_NET, EndpointID: ENDPOINT, Interface: { Address: '100.64.0.2/24', AddressIPv6: '', MacAddress: '' }, Options: {} });
  await call(handlers, 'NetworkDriver.Join', { NetworkID: DOCKER_NET, EndpointID: ENDPOINT, SandboxKey: fake.netnsFile, Options: {} });
  fake.links.moved = 'eth0';
  await until('the adoption', () => adoptedAs.length > 0);
  t.deepEqual(adoptedAs, [''], 'attached without waiting for dockerd\'s API');
  // dockerd's API comes up and lists the container.
  const server = createServer((req, res) => {
    const body = req.url === `/networks/${DOCKER_NET}` ? { Containers: { x: { Name: '/c5', EndpointID: ENDPOINT } } } : {};
    res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify(body));
  });
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  t.teardown(() => server.close());
  await until('the name', () => named.length > 0);
  t.deepEqual(named, ['endpoint eth0 c5']);
  t.is(new DockerState(dir).endpoints.get(ENDPOINT)?.name, 'c5', 'the name is saved');
});
