import test from 'ava';
import { staleFlows } from '../../agent/services/stale-flows.ts';
import type { LbService } from '../../dataplane/lb/index.ts';

const udp = (vip: string, backends: string[], name = 'dns'): LbService => ({ name, vip, ports: [{ port: 53, protocol: 'udp' }], backends });
const tcp = (vip: string, backends: string[]): LbService => ({ name: 'web', vip, ports: [{ port: 80, protocol: 'tcp' }], backends });

test('a UDP VIP that lost backends drops their flows, and only theirs', (t) => {
  t.deepEqual(staleFlows([udp('100.64.0.2', ['10.0.0.1', '10.0.0.2', '10.0.0.3'])], [udp('100.64.0.2', ['10.0.0.2', '10.0.0.4'])]), [
    ['100.64.0.2', 'udp', '10.0.0.1'],
    ['100.64.0.2', 'udp', '10.0.0.3'],
  ]);
});

test('unchanged or grown sets drop nothing; TCP-only services never do', (t) => {
  t.deepEqual(staleFlows([udp('100.64.0.2', ['10.0.0.1'])], [udp('100.64.0.2', ['10.0.0.1', '10.0.0.2'])]), []);
  t.deepEqual(staleFlows([tcp('100.64.0.3', ['10.0.0.1'])], [tcp('100.64.0.3', [])]), []);
});

test('a removed service, a VIP whose UDP port went, and an emptied set drop every backend', (t) => {
  t.deepEqual(staleFlows([udp('100.64.0.2', ['10.0.0.1'])], []), [['100.64.0.2', 'udp', '10.0.0.1']]);
  t.deepEqual(staleFlows([udp('100.64.0.2', ['10.0.0.1'])], [tcp('100.64.0.2', ['10.0.0.1'])]), [['100.64.0.2', 'udp', '10.0.0.1']]);
  t.deepEqual(staleFlows([udp('100.64.0.2', ['10.0.0.1'])], [udp('100.64.0.2', [])]), [['100.64.0.2', 'udp', '10.0.0.1']]);
});

test('a backend listed twice for one VIP is dropped once', (t) => {
  t.deepEqual(staleFlows([udp('100.64.0.2', ['10.0.0.1']), udp('100.64.0.2', ['10.0.0.1'], 'dns2')], []), [['100.64.0.2', 'udp', '10.0.0.1']]);
});
