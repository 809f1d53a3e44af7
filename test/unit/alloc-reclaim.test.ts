// The reclaim protocol's pure parts (controlplane/allocation/reclaim.ts), the
// values a reclaim keeps (agent/overlay/allocation-in-use.ts) and the doctor
// lines for allocator conflicts and blocked reclaims.
import test from 'ava';
import { Allocator, ReclaimRound, chooseReclaimer, goneOwners, initialRing, spacesToReport, syncRefusal } from '../../controlplane/allocation/index.ts';
import { valuesInUse, type InUseState } from '../../agent/overlay/allocation-in-use.ts';
import { allocationFindings, RECLAIM_REPORT_AFTER_MS } from '../../agent/allocation/doctor-findings.ts';
import type { AllocationConflict } from '../../agent/allocation/conflicts.ts';
import type { EndpointObject, NetworkObject, ServiceObject } from '../../agent/wire/objects-codec.ts';

test('the reclaimer is the active member with the smallest ID, whatever the order', (t) => {
  t.is(chooseReclaimer(['c', 'a', 'b']), 'a');
  t.is(chooseReclaimer(new Set(['b'])), 'b');
  t.is(chooseReclaimer([]), undefined);
});

test('a member answers only the reclaimer of its own roster, and only about nodes it knows are gone', (t) => {
  const request = { from: 'a', to: 'b', gone: ['d'], spaces: ['vni'] };
  t.is(syncRefusal(request, { active: new Set(['a', 'b', 'c']) }), undefined);
  t.regex(syncRefusal({ ...request, from: 'b', to: 'c' }, { active: new Set(['a', 'b', 'c']) }) ?? '', /counts a as the reclaimer, not b/);
  t.regex(syncRefusal(request, { active: new Set(['a', 'b', 'd']) }) ?? '', /still counts d as active/);
  // A member that knows a newer, smaller member the sender has not heard of refuses it too.
  t.regex(syncRefusal(request, { active: new Set(['0', 'a', 'b']) }) ?? '', /counts 0 as the reclaimer/);
});

test('gone owners and the spaces a member reports', (t) => {
  const a = Allocator.init('a', 'vni', 0, 10);
  const b = Allocator.join('b', 'vni', 0, 10);
  b.merge(a.ring);
  const other = initialRing('subnet', 0, 4, 'b');
  t.deepEqual(goneOwners(a.ring, new Set(['a'])), ['a']);
  t.deepEqual(goneOwners(a.ring, new Set(['x'])), []);
  const request = { from: 'b', to: 'c', gone: ['a'], spaces: ['ip/n'] };
  t.deepEqual(spacesToReport(request, [a.ring, other]).map((r) => r.space), ['vni'], 'a space where a gone node owns tokens');
  t.deepEqual(spacesToReport({ ...request, spaces: ['subnet'] }, [a.ring, other]).map((r) => r.space), ['vni', 'subnet'], 'and every space asked');
});

test('a round is complete only with every member’s answer, and widens when a member reports a space not asked', (t) => {
  const vni = initialRing('vni', 0, 10, 'd');
  const subnet = initialRing('subnet', 0, 4, 'd');
  const round = new ReclaimRound(['b', 'c'], ['d'], ['vni']);
  t.deepEqual(round.request('a', 'b'), { from: 'a', to: 'b', gone: ['d'], spaces: ['vni'] });
  round.record('b', { rings: [vni], inUse: [{ space: 'vni', values: [3] }] });
  t.deepEqual(round.outcome(), { kind: 'incomplete', missing: ['c'] });
  t.throws(() => round.record('x', { rings: [], inUse: [] }), { message: /not part of this reclaim round/ });
  round.record('c', { rings: [vni, subnet], inUse: [{ space: 'vni', values: [4] }, { space: 'subnet', values: [1] }] });
  t.deepEqual(round.outcome(), { kind: 'widen', spaces: ['subnet', 'vni'] });

  const wider = new ReclaimRound(['b', 'c'], ['d'], ['subnet', 'vni']);
  wider.record('b', { rings: [vni], inUse: [{ space: 'vni', values: [3] }] });
  wider.record('c', { rings: [vni, subnet], inUse: [{ space: 'vni', values: [4] }, { space: 'subnet', values: [1] }] });
  const done = wider.outcome();
  if (done.kind !== 'complete') return t.fail(JSON.stringify(done));
  t.deepEqual(done.spaces.get('vni'), { rings: [vni, vni], inUse: new Set([3, 4]) }, 'the values in use are the union of every answer');
  t.deepEqual(done.spaces.get('subnet'), { rings: [subnet], inUse: new Set([1]) });
});

const network = (id: string, vni: number, subnet: string, poolSubnet: boolean): NetworkObject => ({
  id, name: `net-${id}`, vni, subnet, gateway: subnet.replace(/0\/\d+$/, '1'), internal: false, createdBy: 'a'.repeat(32), poolSubnet,
});
const endpoint = (networkId: string, ip: string, nodeId: string): EndpointObject => ({
  id: `e${ip.replaceAll('.', '')}`, networkId, name: '', ip, mac: '02:00:00:00:00:01', nodeId, vtep: '198.18.0.1', sandbox: 's', aliases: [], services: [], unhealthyServices: [],
});
const service = (networkId: string, vip: string): ServiceObject => ({
  id: 'abcdef123456', name: 'web', networkId, mode: 'vip', vip, ports: [], health: { kind: '', port: 0, path: '' }, createdBy: 'a'.repeat(32), publish: [],
});

test('a reclaim keeps the VNIs, pool subnets, VIPs and active members’ addresses, and frees the gone node’s endpoints', (t) => {
  const state: InUseState = {
    pool: '100.64.0.0/10',
    networks: [
      network('aaaaaaaaaaaa', 7, '100.64.3.0/24', true),
      network('bbbbbbbbbbbb', 9, '192.0.2.0/24', false),
      // A peer's broken entry claims a pool subnet that is no /24 of the pool: it reserves nothing, and nothing throws.
      network('cccccccccccc', 11, '100.64.8.0/25', true),
    ],
    services: [service('aaaaaaaaaaaa', '100.64.3.200')],
    endpoints: (id) => (id === 'aaaaaaaaaaaa' ? [endpoint(id, '100.64.3.5', 'live'), endpoint(id, '100.64.3.6', 'gone')] : []),
    isActive: (id) => id === 'live',
  };
  t.deepEqual(valuesInUse('vni', state), [7, 9, 11]);
  t.deepEqual(valuesInUse('subnet', state), [3]);
  const ips = valuesInUse('ip/aaaaaaaaaaaa', state)?.sort((x, y) => x - y);
  t.deepEqual(ips, [(100 << 24 >>> 0) + (64 << 16) + (3 << 8) + 5, (100 << 24 >>> 0) + (64 << 16) + (3 << 8) + 200]);
  t.is(valuesInUse('ip/dddddddddddd', state), undefined, 'the space of a removed network is not reclaimed');
  t.deepEqual(valuesInUse('t-other', state), []);
});

test('doctor lists every refused ring merge, and a reclaim only once it has waited long', (t) => {
  const now = new Date('2026-01-01T00:10:00Z');
  const conflict: AllocationConflict = {
    space: 'vni', source: 'b'.repeat(32), via: 'table', count: 3,
    explanations: ['token 1 has version 2 here (owner a, 4 free) and a different content at the same version on the peer'],
    firstSeen: new Date('2026-01-01T00:00:00Z'), lastSeen: now,
  };
  const restore: AllocationConflict = { ...conflict, source: 'self', via: 'restore', explanations: ['could not restore the saved vni allocation state: bad file'] };
  const [table, saved] = allocationFindings([conflict, restore], undefined, now);
  t.is(table?.subject, 'allocation space vni');
  t.regex(table?.problem ?? '', new RegExp(`refused a conflicting ring from node ${'b'.repeat(32)} \\(via table, 3 time\\(s\\) since 2026-01-01T00:00:00.000Z\\): token 1 has version 2`));
  t.regex(table?.hint ?? '', /weft node rm/);
  t.regex(saved?.problem ?? '', /could not restore/);
  t.regex(saved?.hint ?? '', /cluster\/alloc/);

  const blocked = { gone: ['d'], waitingFor: [{ node: 'b', reason: 'connection refused' }], since: new Date(now.getTime() - RECLAIM_REPORT_AFTER_MS + 1) };
  t.deepEqual(allocationFindings([], blocked, now), [], 'a reclaim that just started waiting is not a problem yet');
  const late = allocationFindings([], { ...blocked, since: new Date(now.getTime() - RECLAIM_REPORT_AFTER_MS) }, now);
  t.is(late.length, 1);
  t.is(late[0]?.subject, 'allocation ranges of d');
  t.regex(late[0]?.problem ?? '', /waiting for an answer from b \(connection refused\)/);
  t.deepEqual(allocationFindings([], undefined, now), []);
});
