// Which conntrack entries of an ingress sandbox still map a client's UDP flow
// to a backend its ingress table no longer has. Inside the ingress sandbox a
// flow's original destination is the sandbox's gateway address (the host's
// publish table DNATs the published port there) and its reply source is the
// backend the ingress table chose; a UDP client that keeps sending from one
// port would stay on a gone backend for as long as it sends. The VIP load
// balancer's rule (stale-flows.ts) applies, with the sandbox's address as the
// VIP: the selector cannot name a port, so a backend still behind another
// published UDP port of the same sandbox keeps its flows (they are rare).
import type { IngressEntry } from '../../dataplane/ingress.ts';
import type { LbService } from '../../dataplane/lb/index.ts';
import { staleFlows, type StaleFlow } from '../services/stale-flows.ts';

function asLbServices(address: string, entries: readonly IngressEntry[]): LbService[] {
  return entries.map((e) => ({ name: `${e.published}/${e.protocol}`, vip: address, ports: [{ port: e.published, protocol: e.protocol }], backends: e.backends }));
}

/** The UDP flows to `address` that `before` sent to a backend `after` no longer has. */
export function staleIngressFlows(address: string, before: readonly IngressEntry[], after: readonly IngressEntry[]): StaleFlow[] {
  return staleFlows(asLbServices(address, before), asLbServices(address, after));
}
