// The UDP flows an ingress sandbox must forget when its table loses a backend:
// selected by the sandbox's own address (where the host's DNAT sends clients),
// UDP, and the backend that left; TCP keeps its connections (as the VIP's).
import test from 'ava';
import { staleIngressFlows } from '../../agent/ingress/stale-ingress-flows.ts';

const ADDRESS = '198.19.255.7';
const udp = (backends: string[]) => ({ published: 5353, protocol: 'udp' as const, target: 53, backends });
const tcp = (backends: string[]) => ({ published: 8080, protocol: 'tcp' as const, target: 80, backends });

test('a backend that leaves a published UDP port loses its flows to the ingress sandbox\'s address', (t) => {
  t.deepEqual(staleIngressFlows(ADDRESS, [udp(['100.64.0.2', '100.64.0.3'])], [udp(['100.64.0.3'])]), [[ADDRESS, 'udp', '100.64.0.2']]);
});

test('nothing when the backends stay, only TCP changes, or a backend is added', (t) => {
  t.deepEqual(staleIngressFlows(ADDRESS, [udp(['100.64.0.2'])], [udp(['100.64.0.2'])]), []);
  t.deepEqual(staleIngressFlows(ADDRESS, [tcp(['100.64.0.2', '100.64.0.3'])], [tcp(['100.64.0.3'])]), []);
  t.deepEqual(staleIngressFlows(ADDRESS, [udp(['100.64.0.2'])], [udp(['100.64.0.2', '100.64.0.3'])]), []);
});

test('a port that is no longer published drops the flows of each of its backends', (t) => {
  t.deepEqual(staleIngressFlows(ADDRESS, [udp(['100.64.0.2', '100.64.0.3']), tcp(['100.64.0.4'])], [tcp(['100.64.0.4'])]), [[ADDRESS, 'udp', '100.64.0.2'], [ADDRESS, 'udp', '100.64.0.3']]);
});
