// Docker's endpoint calls: CreateEndpoint records the address weft's IPAM
// handed out, Join prepares the link (container-endpoints.ts finishes it once
// dockerd has moved it), Leave and DeleteEndpoint undo, each safe to repeat.
// What Docker 20.10 sends here and what it does with the answers is in
// docs/containers.md ("Docker").
import { z } from 'zod';
import { macFromIp } from '../../dataplane/index.ts';
import { OBJECT_NAME, OBJECT_NAME_RULE } from '../../lib/names.ts';
import type { Overlay } from '../overlay/overlay.ts';
import { DockerState } from './docker-state.ts';
import { joinNameOf, type ContainerEndpoints } from './container-endpoints.ts';
import { parse } from './network-handlers.ts';
import { PluginError, type PluginHandler } from './plugin-server.ts';

const dockerId = z.string().regex(/^[0-9a-f]{64}$/, 'must be a 64-hex-digit Docker ID');
const ids = { NetworkID: dockerId, EndpointID: dockerId };
const createEndpoint = z.object({
  ...ids,
  Interface: z.object({ Address: z.string().max(64).default(''), AddressIPv6: z.string().max(64).default(''), MacAddress: z.string().max(32).default('') }).nullish(),
  Options: z.record(z.string(), z.unknown()).nullish().transform((o) => o ?? {}),
});
// The namespace path dockerd bind-mounts (…/docker/netns/<id>): plain characters only, no '..'.
const sandboxKey = z.string().max(256).regex(/^\/[A-Za-z0-9_.\/-]+$/, 'must be an absolute path').refine((p) => !p.split('/').includes('..'), 'must not contain ..');
const join = z.object({ ...ids, SandboxKey: sandboxKey, Options: z.record(z.string(), z.unknown()).nullish() });
const endpointCall = z.object(ids);

/** Endpoint options weft reads: `docker network connect --driver-opt KEY=VALUE` puts them here. */
const NAME_OPTION = 'weft.name';
const SERVICES_OPTION = 'weft.services';

function endpointOptions(options: Record<string, unknown>, overlay: Overlay, networkId: string): { name: string; services: string[] } {
  const text = (key: string): string => {
    const value = options[key];
    if (value === undefined) return '';
    if (typeof value !== 'string') throw new PluginError(`--driver-opt ${key} must be a string`);
    return value;
  };
  const name = text(NAME_OPTION);
  if (name !== '' && !OBJECT_NAME.test(name)) throw new PluginError(`--driver-opt ${NAME_OPTION}=${name}: the name must be ${OBJECT_NAME_RULE}`);
  const services = text(SERVICES_OPTION).split(',').filter((s) => s !== '');
  for (const service of services) {
    const found = overlay.services.byName(service);
    if (!found) throw new PluginError(`--driver-opt ${SERVICES_OPTION}: no weft service "${service}" (create it with \`weft service create\`)`);
    if (found.networkId !== networkId) throw new PluginError(`--driver-opt ${SERVICES_OPTION}: service "${service}" is on another weft network`);
  }
  return { name, services };
}

/** The weft network of a Docker network, or why there is none. */
function weftNetworkOf(state: DockerState, overlay: Overlay, dockerNetworkId: string): string {
  const networkId = state.networks.get(dockerNetworkId);
  if (networkId === undefined) throw new PluginError(`Docker network ${dockerNetworkId.slice(0, 12)} is not known to this weft agent (created by an older version?); remove and re-create it with \`docker network create -d weft --ipam-driver weft --subnet ...\``);
  if (!overlay.networks.byId(networkId)) throw new PluginError(`the weft network behind Docker network ${dockerNetworkId.slice(0, 12)} was removed (\`weft network rm\`); remove the Docker network too`);
  return networkId;
}

export function endpointHandlers(overlay: () => Overlay, state: DockerState, endpoints: ContainerEndpoints): Record<string, PluginHandler> {
  return {
    'NetworkDriver.CreateEndpoint': (body) => {
      const r = parse('CreateEndpoint', createEndpoint, body);
      const networkId = weftNetworkOf(state, overlay(), r.NetworkID);
      const address = r.Interface?.Address ?? '';
      if ((r.Interface?.AddressIPv6 ?? '') !== '') throw new PluginError('weft networks are IPv4 only: drop --ip6');
      const ip = address.split('/')[0] ?? '';
      if (!state.addresses.has(DockerState.addressKey(networkId, ip))) throw new PluginError(`endpoint address "${address}" was not handed out by weft: use --ipam-driver weft on the Docker network`);
      const mac = macFromIp(ip);
      const given = r.Interface?.MacAddress ?? '';
      if (given !== '' && given.toLowerCase() !== mac) throw new PluginError(`--mac-address is not supported: weft derives the MAC from the address (${mac})`);
      const existing = state.endpoints.get(r.EndpointID);
      if (existing && existing.ip !== ip) throw new PluginError(`endpoint ${r.EndpointID.slice(0, 12)} exists already with address ${existing.ip}`);
      const { name, services } = endpointOptions(r.Options, overlay(), networkId);
      state.endpoints.set(r.EndpointID, { dockerNetworkId: r.NetworkID, networkId, ip, mac, name, services, sandboxKey: existing?.sandboxKey ?? '', ifname: existing?.ifname ?? '' });
      state.save();
      // Docker refuses an answer that repeats what it set; the MAC is new to it unless it gave one.
      return { Interface: given === '' ? { MacAddress: mac } : {} };
    },
    'NetworkDriver.EndpointOperInfo': (body) => {
      parse('EndpointOperInfo', endpointCall, body);
      return { Value: {} };
    },
    'NetworkDriver.DeleteEndpoint': async (body) => {
      const r = parse('DeleteEndpoint', endpointCall, body);
      await endpoints.delete(r.EndpointID);
      return {};
    },
    'NetworkDriver.Join': async (body) => {
      const r = parse('Join', join, body);
      weftNetworkOf(state, overlay(), r.NetworkID);
      // Docker moves this interface into the container and renames it ethN.
      const localName = joinNameOf(r.EndpointID);
      try {
        await endpoints.join(r.EndpointID, r.SandboxKey, localName);
      } catch (error) {
        throw new PluginError(`cannot prepare the container's link: ${(error as Error).message}`);
      }
      // No Gateway: weft sets the default route itself (through the host's gateway bridge
      // unless the network is internal), and Docker must not add its docker_gwbridge.
      return { InterfaceName: { SrcName: localName, DstPrefix: 'eth' }, DisableGatewayService: true };
    },
    'NetworkDriver.Leave': async (body) => {
      const r = parse('Leave', endpointCall, body);
      await endpoints.leave(r.EndpointID);
      return {};
    },
    'NetworkDriver.ProgramExternalConnectivity': (body) => {
      parse('ProgramExternalConnectivity', z.object({ ...ids, Options: z.unknown() }), body);
      return {}; // egress is the gateway bridge's, set up when the container is adopted
    },
    'NetworkDriver.RevokeExternalConnectivity': (body) => {
      parse('RevokeExternalConnectivity', endpointCall, body);
      return {};
    },
  };
}
