// What weft answers Docker's plugin handshake: it implements a network driver
// and an IPAM driver under one name. Scope is "local" (each dockerd keeps its
// own network object, no Swarm store needed) while connectivity is "global":
// weft makes the same-named network on every host one overlay network.
// The network, endpoint and address calls are not implemented yet: the server
// answers them with an Err naming the method (docs/containers.md, "Docker").
import { z } from 'zod';
import { PluginError, type PluginHandler } from './plugin-server.ts';

/** The address space Docker records for weft-managed pools. */
export const ADDRESS_SPACE = 'weft';

// The handshake calls carry no body; anything else is a caller we do not understand.
const empty = z.union([z.undefined(), z.null(), z.strictObject({})]);

function noBody(method: string, body: unknown): void {
  if (!empty.safeParse(body).success) throw new PluginError(`${method} takes no request body`);
}

export function handshakeHandlers(): Record<string, PluginHandler> {
  return {
    'Plugin.Activate': (body) => {
      noBody('Plugin.Activate', body);
      return { Implements: ['NetworkDriver', 'IpamDriver'] };
    },
    'NetworkDriver.GetCapabilities': (body) => {
      noBody('NetworkDriver.GetCapabilities', body);
      return { Scope: 'local', ConnectivityScope: 'global' };
    },
    'IpamDriver.GetCapabilities': (body) => {
      noBody('IpamDriver.GetCapabilities', body);
      // weft derives each endpoint's MAC from its address: Docker need not send one.
      return { RequiresMACAddress: false, RequiresRequestReplay: false };
    },
    'IpamDriver.GetDefaultAddressSpaces': (body) => {
      noBody('IpamDriver.GetDefaultAddressSpaces', body);
      return { LocalDefaultAddressSpace: ADDRESS_SPACE, GlobalDefaultAddressSpace: ADDRESS_SPACE };
    },
  };
}
