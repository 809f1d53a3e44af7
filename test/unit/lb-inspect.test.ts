// weft doctor's view of a load-balancing table: nft's JSON listing read into
// sets and compared with the desired services, whatever order nft lists in.
import test from 'ava';
import { compareLb, desiredLbState, heldServices, parseLbListing } from '../../dataplane/lb/inspect.ts';
import type { LbService } from '../../dataplane/lb/index.ts';

// `nft -j list table ip weft_lb` (nft 1.0.6) of the table renderLb writes for `services` below.
const LISTING = JSON.stringify({ nftables: [
  { metainfo: { version: '1.0.6', release_name: 'Lester Gooch #5', json_schema_version: 1 } },
  { table: { family: 'ip', name: 'weft_lb', handle: 2 } },
  { chain: { family: 'ip', table: 'weft_lb', name: 'output', handle: 1, type: 'nat', hook: 'output', prio: -100, policy: 'accept' } },
  { chain: { family: 'ip', table: 'weft_lb', name: 'svc_none', handle: 2 } },
  { chain: { family: 'ip', table: 'weft_lb', name: 'svc_one', handle: 3 } },
  { chain: { family: 'ip', table: 'weft_lb', name: 'svc_web', handle: 4 } },
  { rule: { family: 'ip', table: 'weft_lb', chain: 'output', handle: 6, expr: [
    { match: { op: 'in', left: { ct: { key: 'state' } }, right: 'new' } },
    { vmap: {
      key: { concat: [{ payload: { protocol: 'ip', field: 'daddr' } }, { meta: { key: 'l4proto' } }, { payload: { protocol: 'th', field: 'dport' } }] },
      data: { set: [
        [{ concat: ['100.64.1.100', 'udp', 53] }, { jump: { target: 'svc_web' } }],
        [{ concat: ['100.64.1.100', 'tcp', 80] }, { jump: { target: 'svc_web' } }],
        [{ concat: ['100.64.1.101', 'tcp', 80] }, { jump: { target: 'svc_one' } }],
        [{ concat: ['100.64.1.102', 'tcp', 80] }, { jump: { target: 'svc_none' } }],
      ] },
    } },
  ] } },
  { rule: { family: 'ip', table: 'weft_lb', chain: 'svc_none', handle: 7, expr: [{ reject: { type: 'tcp reset' } }] } },
  { rule: { family: 'ip', table: 'weft_lb', chain: 'svc_none', handle: 8, expr: [{ reject: { type: 'icmp', expr: 'port-unreachable' } }] } },
  { rule: { family: 'ip', table: 'weft_lb', chain: 'svc_one', handle: 9, expr: [{ dnat: { addr: '100.64.1.4' } }] } },
  { rule: { family: 'ip', table: 'weft_lb', chain: 'svc_web', handle: 11, expr: [{ dnat: { addr: { map: {
    key: { numgen: { mode: 'random', mod: 2, offset: 0 } }, data: { set: [[0, '100.64.1.2'], [1, '100.64.1.3']] },
  } } } }] } },
] });

const services: LbService[] = [
  { name: 'web', vip: '100.64.1.100', ports: [{ port: 80, protocol: 'tcp' }, { port: 53, protocol: 'udp' }], backends: ['100.64.1.3', '100.64.1.2'] },
  { name: 'one', vip: '100.64.1.101', ports: [{ port: 80, protocol: 'tcp' }], backends: ['100.64.1.4'] },
  { name: 'none', vip: '100.64.1.102', ports: [{ port: 80, protocol: 'tcp' }], backends: [] },
];

test('the table weft writes reads back as exactly the desired state', (t) => {
  t.deepEqual(compareLb(desiredLbState(services), parseLbListing(LISTING)), []);
});

test('differences are named: backends, dispatch entries, chains', (t) => {
  const changed = structuredClone(services);
  changed[0]!.backends = ['100.64.1.2', '100.64.1.9'];
  changed[1]!.ports = [{ port: 8080, protocol: 'tcp' }];
  changed.pop();
  t.deepEqual(compareLb(desiredLbState(changed), parseLbListing(LISTING)).sort(), [
    'missing dispatch 100.64.1.101:8080/tcp → svc_one',
    'svc_web sends to 100.64.1.2, 100.64.1.3, should send to 100.64.1.2, 100.64.1.9',
    'unexpected chain svc_none',
    'unexpected dispatch 100.64.1.101:80/tcp → svc_one',
    'unexpected dispatch 100.64.1.102:80/tcp → svc_none',
  ]);
});

test('a missing table, a table that should not exist, a missing conntrack match', (t) => {
  t.deepEqual(compareLb(desiredLbState(services), undefined), ['no load-balancing table (ip weft_lb), but this sandbox should balance service VIPs']);
  t.deepEqual(compareLb(desiredLbState([]), undefined), []);
  t.deepEqual(compareLb(desiredLbState([]), parseLbListing(LISTING)), ['a load-balancing table (ip weft_lb) that should not be there']);
  const withoutCt = JSON.parse(LISTING) as { nftables: { rule?: { expr: unknown[] } }[] };
  withoutCt.nftables[6]!.rule!.expr.shift();
  t.deepEqual(compareLb(desiredLbState(services), parseLbListing(JSON.stringify(withoutCt))), ['the dispatch rule lacks its `ct state new` match']);
});

test('a listing in another shape is an error, not a crash', (t) => {
  t.throws(() => parseLbListing('{"nftables": [{"rule": {"chain": "output", "expr": [{"vmap": {"data": {"set": [["x"]]}}}]}}]}'));
  t.throws(() => parseLbListing('not json'));
  t.throws(() => heldServices('{"nftables": [{"rule": {"chain": "output", "expr": [{"vmap": {"data": {"set": [["x"]]}}}]}}]}'));
  t.throws(() => heldServices('not json'));
});

/** Services compared whatever order nft lists ports and backends in. */
const canonical = (list: readonly { name: string; vip: string; ports: readonly { port: number; protocol: string }[]; backends: readonly string[] }[]) =>
  list
    .map((s) => ({ ...s, ports: [...s.ports].sort((a, b) => a.port - b.port || a.protocol.localeCompare(b.protocol)), backends: [...s.backends].sort() }))
    .sort((a, b) => a.name.localeCompare(b.name));

test('the services a table balances read back from its listing (what a restarted agent judges old flows by)', (t) => {
  t.deepEqual(canonical(heldServices(LISTING)), canonical(services));
});

test('held services: a chain reached from two VIPs is two services; protocols weft does not write are skipped', (t) => {
  const odd = JSON.parse(LISTING) as { nftables: { rule?: { chain: string; expr: { vmap?: { data: { set: unknown[] } } }[] } }[] };
  const dispatch = odd.nftables[6]!.rule!.expr[1]!.vmap!.data.set;
  dispatch.push([{ concat: ['100.64.1.200', 'udp', 53] }, { jump: { target: 'svc_web' } }], [{ concat: ['100.64.1.201', 'sctp', 53] }, { jump: { target: 'svc_one' } }]);
  const held = heldServices(JSON.stringify(odd));
  t.deepEqual(held.filter((s) => s.name === 'web').map((s) => [s.vip, s.ports.length]).sort(), [['100.64.1.100', 2], ['100.64.1.200', 1]]);
  t.deepEqual(held.filter((s) => s.name === 'one').map((s) => s.vip), ['100.64.1.101']);
});
