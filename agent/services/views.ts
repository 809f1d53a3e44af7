// What each local sandbox should see of the services: the DNS view (per
// sandbox, only its networks) and the VIP load-balancer state. Both are built
// from the same live backend set (controlplane/services/backends.ts), so DNS
// and the load balancers always agree.
import { liveBackends } from '../../controlplane/services/backends.ts';
import type { DnsClientView, DnsNetworkView } from '../../controlplane/services/dns-answers.ts';
import type { EndpointObject, NetworkObject, ServiceObject } from '../wire/objects-codec.ts';

export interface ServiceState {
  networks: NetworkObject[];
  services: ServiceObject[];
  /** Visible (live-host) endpoints of a network this host replicates. */
  endpoints: (networkId: string) => EndpointObject[];
}

export interface LbServiceSpec {
  name: string;
  vip: string;
  ports: { port: number; protocol: 'tcp' | 'udp' }[];
  backends: string[];
}

export function networkView(state: ServiceState, network: NetworkObject): DnsNetworkView {
  const endpoints = state.endpoints(network.id);
  return {
    name: network.name,
    subnet: network.subnet,
    services: state.services
      .filter((s) => s.networkId === network.id)
      .map((s) => ({
        name: s.name,
        mode: s.mode,
        vip: s.vip,
        ports: s.ports,
        backends: liveBackends(s, endpoints).map((e) => ({ ip: e.ip, name: e.name })),
      })),
    endpoints: endpoints.map((e) => ({ name: e.name, aliases: e.aliases, ip: e.ip })),
  };
}

export function clientView(state: ServiceState, networkIds: readonly string[]): DnsClientView {
  const networks = state.networks.filter((n) => networkIds.includes(n.id));
  return { networks: networks.map((n) => networkView(state, n)) };
}

/** The VIP services a sandbox on these networks load-balances, with their live backends. */
export function lbServices(state: ServiceState, networkIds: readonly string[]): LbServiceSpec[] {
  return state.services
    .filter((s) => s.mode === 'vip' && s.vip !== '' && networkIds.includes(s.networkId))
    .map((s) => ({ name: s.name, vip: s.vip, ports: s.ports, backends: liveBackends(s, state.endpoints(s.networkId)).map((e) => e.ip) }));
}
