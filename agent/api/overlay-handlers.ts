// Agent API handlers for networks, sandboxes, endpoints and doctor. They
// validate, call the overlay, and shape replies as proto/agent.proto says.
import { z } from 'zod';
import type { Overlay } from '../overlay/overlay.ts';
import type { EndpointObject, HealthCheck, NetworkObject, ServiceObject } from '../wire/objects-codec.ts';
import { liveBackends } from '../../controlplane/services/backends.ts';
import { badRequest } from './errors.ts';
import { containerGcRequest, containerRef, endpointsRequest, networkCreateRequest, networkRef, sandboxCreateRequest, sandboxDetachRequest, serviceCreateRequest, serviceRef } from './schemas.ts';

type Handler = (request: unknown) => Promise<object> | object;

export function parse<T>(schema: z.ZodType<T>, request: unknown): T {
  const result = schema.safeParse(request);
  if (!result.success) throw badRequest(z.prettifyError(result.error));
  return result.data;
}

export function overlayHandlers(overlay: () => Overlay, nodeName: (nodeId: string) => string): Record<string, Handler> {
  const endpointInfo = (e: EndpointObject): object => ({
    ...e,
    network: overlay().networks.byId(e.networkId)?.name ?? '',
    node: nodeName(e.nodeId),
  });
  const networkInfo = (n: NetworkObject, withEndpoints: boolean): object => ({
    ...n,
    hosts: overlay().hostsOn(n.id),
    endpoints: withEndpoints ? overlay().endpoints(n.name).map(endpointInfo) : [],
  });
  const serviceInfo = (s: ServiceObject, withBackends: boolean): object => {
    const network = overlay().networks.byId(s.networkId);
    const candidates = network && withBackends ? overlay().endpoints(network.name).filter((e) => e.services.includes(s.name)) : [];
    const live = new Set(liveBackends(s, candidates).map((e) => e.id));
    return {
      ...s,
      network: network?.name ?? '',
      health: formatHealth(s.health),
      backends: candidates.map((e) => ({ endpointId: e.id, name: e.name, ip: e.ip, nodeId: e.nodeId, node: nodeName(e.nodeId), healthy: live.has(e.id) })),
    };
  };
  return {
    ServiceCreate: async (req) => serviceInfo(await overlay().createService(parse(serviceCreateRequest, req)), false),
    ServiceList: () => ({ services: overlay().services.list().map((s) => serviceInfo(s, true)) }),
    ServiceInspect: (req) => serviceInfo(overlay().services.require(parse(serviceRef, req).name), true),
    ServiceRemove: async (req) => serviceInfo(await overlay().removeService(parse(serviceRef, req).name), false),
    NetworkCreate: async (req) => networkInfo(await overlay().createNetwork(parse(networkCreateRequest, req)), false),
    NetworkList: () => ({ networks: overlay().networks.list().map((n) => networkInfo(n, false)) }),
    NetworkInspect: (req) => networkInfo(overlay().networks.require(parse(networkRef, req).name), true),
    NetworkRemove: async (req) => networkInfo(await overlay().removeNetwork(parse(networkRef, req).name), false),
    SandboxCreate: async (req) => {
      const info = await overlay().createSandbox(parse(sandboxCreateRequest, req));
      return { ...info, endpoints: info.endpoints.map(endpointInfo) };
    },
    SandboxDetach: async (req) => {
      const { netns, network } = parse(sandboxDetachRequest, req);
      const info = await overlay().detach(netns, network);
      return { ...info, endpoints: info.endpoints.map(endpointInfo) };
    },
    ContainerDetach: async (req) => {
      const { containerId, ifname } = parse(containerRef, req);
      const info = await overlay().detachContainer(containerId, ifname);
      return info ? { ...info, endpoints: info.endpoints.map(endpointInfo) } : {};
    },
    ContainerGc: async (req) => {
      const { network, cniNetwork, valid } = parse(containerGcRequest, req);
      return { removed: await overlay().collectContainers(network, cniNetwork, valid) };
    },
    ContainerCheck: async (req) => {
      const { containerId, ifname } = parse(containerRef, req);
      const { info, problems } = await overlay().checkContainer(containerId, ifname);
      return { sandbox: { ...info, endpoints: info.endpoints.map(endpointInfo) }, problems };
    },
    Endpoints: (req) => ({ endpoints: overlay().endpoints(parse(endpointsRequest, req).network).map(endpointInfo) }),
    Doctor: async () => ({ findings: await overlay().doctor() }),
  };
}

export function formatHealth(health: HealthCheck): string {
  if (health.kind === '') return '';
  return health.kind === 'tcp' ? `tcp:${health.port}` : `http:${health.port}${health.path}`;
}
