// Which conntrack entries a backend change leaves pointing at a backend that
// is no longer live, and should go (kube-proxy does the same).
//
// conntrack keeps a flow's NAT mapping while packets keep coming: a UDP client
// that always sends from one port (DNS, syslog, statsd, games) would stay on a
// dead backend forever. Deleting the entry makes its next packet a new flow,
// which the (already updated) table sends to a live backend.
//
// UDP only. TCP connections keep their backend, as in kube-proxy: one that left
// the set for a failed health check or a drain may still be working, and a
// reset mid-stream would break it; one to a dead host fails on its own (the
// client's retransmission timeout or keepalive). See docs/load-balancing.md.
import type { LbService } from '../../dataplane/lb/index.ts';

/** A flow selector: original destination `vip`, this protocol, reply source `backend`. */
export type StaleFlow = readonly [vip: string, protocol: 'udp', backend: string];

/** Stale flows to delete in one sandbox's namespace. */
export interface SandboxFlows { netns: string; flows: StaleFlow[] }

/** For each UDP VIP of `before`, the backends it had that the same VIP no longer has in `after`. */
export function staleFlows(before: readonly LbService[], after: readonly LbService[]): StaleFlow[] {
  const kept = new Map<string, Set<string>>();
  for (const service of after) {
    if (!service.ports.some((p) => p.protocol === 'udp')) continue;
    const set = kept.get(service.vip) ?? new Set<string>();
    for (const backend of service.backends) set.add(backend);
    kept.set(service.vip, set);
  }
  const flows: StaleFlow[] = [];
  const seen = new Set<string>();
  for (const service of before) {
    if (!service.ports.some((p) => p.protocol === 'udp')) continue;
    const still = kept.get(service.vip);
    for (const backend of service.backends) {
      const key = `${service.vip}|${backend}`;
      if (still?.has(backend) || seen.has(key)) continue;
      seen.add(key);
      flows.push([service.vip, 'udp', backend]);
    }
  }
  return flows;
}
