// What `weft run` / `weft attach` ask of the overlay, and what they get back.
import { badRequest } from '../api/errors.ts';
import type { EndpointObject, NetworkObject, ServiceObject } from '../wire/objects-codec.ts';
import type { Services } from './services.ts';
import { OBJECT_NAME, OBJECT_NAME_RULE } from '../../lib/names.ts';
import type { PortPublication } from '../../lib/publish-spec.ts';
import type { BandwidthLimits } from '../../lib/bandwidth.ts';

export interface SandboxRequest {
  networks: string[];
  name: string;
  aliases: string[];
  /** Adopt this existing namespace (name or path) instead of creating one. */
  netns?: string | undefined;
  /** Run this command in the sandbox, watched by the agent (weft run --detach). */
  command?: string[] | undefined;
  /** Services the sandbox backs; each must be on one of `networks`. */
  services?: string[] | undefined;
  /**
   * A container runtime's ID for the attachment (CNI_CONTAINERID): with
   * `ifname` it keys the attachment, so a repeated request gets the same one.
   */
  containerId?: string | undefined;
  /** Interface name inside the namespace (CNI_IFNAME); default the first free ethN. */
  ifname?: string | undefined;
  /** Host ports to publish to the sandbox (weft run -p); hostPort 0: a free one. */
  publish?: PortPublication[] | undefined;
  /** An address of the (single) network already allocated for this attachment (Docker's IPAM); its holder frees it. */
  address?: string | undefined;
  /** Limits on the container's traffic over its link (CNI `bandwidth`); only for a container attachment. */
  bandwidth?: BandwidthLimits | undefined;
  /** The CNI network (configuration name) a container attachment was made through: what CNI GC is scoped to. */
  cniNetwork?: string | undefined;
}

/** What keys a container runtime's attachment (CNI_CONTAINERID, CNI_IFNAME). */
export interface ContainerKey {
  containerId: string;
  ifname: string;
}

/** The interfaces a sandbox has on its networks, as a container runtime reports them. */
export interface SandboxInterface {
  network: string;
  ifname: string;
  mac: string;
  ip: string;
  prefixLength: number;
  gateway: string;
}

export interface SandboxInfo {
  id: string;
  netns: string;
  pid: number;
  endpoints: EndpointObject[];
  interfaces: SandboxInterface[];
  /** weft's resolver as the sandbox reaches it (its gateway leg); '' while it has none. */
  nameserver: string;
  /** Where the sandbox's default route goes; '' on internal networks only. */
  defaultGateway: string;
}

/** Checks what does not need cluster state: names and that at least one network is given. */
export function checkSandboxRequest(request: SandboxRequest): void {
  for (const name of [request.name, ...request.aliases].filter((n) => n !== '')) {
    if (!OBJECT_NAME.test(name)) throw badRequest(`name "${name}" must be ${OBJECT_NAME_RULE}`);
  }
  if (request.networks.length === 0) throw badRequest('give at least one --network');
  if (request.containerId !== undefined) {
    // One runtime request attaches one interface: the key must name one attachment.
    if (request.networks.length !== 1) throw badRequest('a container attachment (containerId) names exactly one network');
    if (request.netns === undefined) throw badRequest('a container attachment (containerId) needs the container\'s namespace (netns)');
    if (request.ifname === undefined) throw badRequest('a container attachment (containerId) needs its interface name (ifname)');
    if (request.command !== undefined) throw badRequest('a container attachment (containerId) cannot run a command');
    if ((request.publish ?? []).length > 0) throw badRequest('a container attachment (containerId) cannot publish ports; publish them with `weft attach --netns`');
  }
  if (request.bandwidth !== undefined && request.containerId === undefined) throw badRequest('bandwidth limits are for a container attachment (containerId) only');
  if (request.cniNetwork !== undefined && request.containerId === undefined) throw badRequest('a CNI network name is for a container attachment (containerId) only');
  if (request.address !== undefined && request.networks.length !== 1) throw badRequest('an attachment with a given address names exactly one network');
}

/** The services a new sandbox backs: each must exist and be on one of the sandbox's networks. */
export function servicesToBack(names: readonly string[], networks: readonly NetworkObject[], services: Services, networkName: (id: string) => string): ServiceObject[] {
  return [...new Set(names)].map((name) => {
    const service = services.require(name);
    if (!networks.some((n) => n.id === service.networkId)) {
      const network = networkName(service.networkId);
      throw badRequest(`service "${name}" is on network "${network}"; attach the sandbox to it (--network ${network})`);
    }
    return service;
  });
}
