// The Docker plugin's address and endpoint calls without a dockerd: each
// endpoint address is handed out from the allocator once, freed exactly once
// (a repeated or unknown ReleaseAddress is a no-op), survives a restart
// (docker-plugin.json), and hostile bodies are refused before anything is done.
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import type { Overlay } from '../../agent/overlay/overlay.ts';
import { networkHandlers } from '../../agent/docker/network-handlers.ts';
import { endpointHandlers } from '../../agent/docker/endpoint-handlers.ts';
import { DockerState } from '../../agent/docker/docker-state.ts';
import { ContainerEndpoints } from '../../agent/docker/container-endpoints.ts';
import type { PluginHandler } from '../../agent/docker/plugin-server.ts';

const NETWORK = { id: 'n1', name: 'blue', subnet: '100.64.0.0/24', gateway: '100.64.0.1', vni: 7, internal: false };
const DOCKER_NET = 'a'.repeat(64);
const ENDPOINT = 'b'.repeat(64);

/** An overlay with one network and an allocator that counts. */
function fakeOverlay() {
  const allocated = new Set<string>();
  const freed: string[] = [];
  let next = 2;
  const overlay = {
    networks: { byId: (id: string) => (id === NETWORK.id ? NETWORK : undefined), list: () => [NETWORK] },
    services: { byName: () => undefined },
    containerLinks: {
      allocateAddress: async () => {
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

function setUp(dataDir: string, overlay: Overlay): Record<string, PluginHandler> {
  const state = new DockerState(dataDir);
  const endpoints = new ContainerEndpoints(() => overlay, state, '', pino({ level: 'silent' }));
  return { ...networkHandlers(() => overlay, state), ...endpointHandlers(() => overlay, state, endpoints) };
}

async function call(handlers: Record<string, PluginHandler>, method: string, body: unknown): Promise<Record<string, unknown>> {
  return (await handlers[method]!(body)) as Record<string, unknown>;
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
  const restarted = new ContainerEndpoints(() => overlay, new DockerState(dir), '', pino({ level: 'silent' }), 300);
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
