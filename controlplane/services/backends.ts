// The live backend set of a service: the one rule that both the embedded DNS
// (tasks.<service>, dnsrr answers) and the VIP load balancer follow, so the two
// can never disagree. An endpoint backs a service when it is on the service's
// network, names the service, and passes that service's health check (each
// service checks its backends on its own terms). Endpoints of dead hosts never get
// here: the tables hide them the moment SWIM declares the host dead.

export interface BackendCandidate {
  id: string;
  networkId: string;
  ip: string;
  name: string;
  services: readonly string[];
  /** Services whose health check this endpoint fails. */
  unhealthyServices: readonly string[];
}

export interface ServiceIdentity {
  name: string;
  networkId: string;
}

/** Live, healthy backends of one service, sorted by IP for stable output. */
export function liveBackends<E extends BackendCandidate>(service: ServiceIdentity, endpoints: readonly E[]): E[] {
  return endpoints
    .filter((e) => e.networkId === service.networkId && e.services.includes(service.name) && !e.unhealthyServices.includes(service.name))
    .sort((a, b) => compareIPv4(a.ip, b.ip));
}

function compareIPv4(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < 4; i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}
