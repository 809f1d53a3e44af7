// The resolver's answers as a pure function of the asking sandbox's view.
import test from 'ava';
import type { Answer } from 'dns-packet';
import fc from 'fast-check';
import { answerQuestion, type DnsClientView, type DnsOutcome } from '../../controlplane/services/dns-answers.ts';

/** A record's data (the OPT pseudo-record has none). */
const rdata = (a: Answer): unknown => (a as { data?: unknown }).data;

const app = {
  name: 'app',
  subnet: '100.64.1.0/24',
  services: [
    { name: 'web', mode: 'vip' as const, vip: '100.64.1.2', ports: [{ port: 80, protocol: 'tcp' as const }, { port: 53, protocol: 'udp' as const }], backends: [{ ip: '100.64.1.10', name: 'web-1' }, { ip: '100.64.1.11', name: 'web-2' }, { ip: '100.64.1.12', name: '' }] },
    { name: 'db', mode: 'dnsrr' as const, vip: '', ports: [{ port: 5432, protocol: 'tcp' as const }], backends: [{ ip: '100.64.1.20', name: 'db-1' }, { ip: '100.64.1.21', name: 'db-2' }] },
  ],
  endpoints: [
    { name: 'web-1', aliases: ['front'], ip: '100.64.1.10' },
    { name: 'web-2', aliases: [], ip: '100.64.1.11' },
    { name: '', aliases: [], ip: '100.64.1.12' },
    { name: 'db-1', aliases: [], ip: '100.64.1.20' },
    { name: 'db-2', aliases: [], ip: '100.64.1.21' },
  ],
};
const other = { name: 'other', subnet: '100.64.2.0/24', services: [], endpoints: [{ name: 'web-1', aliases: [], ip: '100.64.2.5' }] };
const view: DnsClientView = { networks: [app] };
const opts = { ttl: 5, random: () => 0.5 };

function ask(name: string, type = 'A', v: DnsClientView = view): DnsOutcome {
  return answerQuestion(v, { name, type }, opts);
}

function data(outcome: DnsOutcome): string[] {
  if (outcome.kind !== 'answer') return ['<forward>'];
  return outcome.answers.map((a) => {
    const value = rdata(a);
    return typeof value === 'string' ? value : JSON.stringify(value);
  }).sort();
}

test('a vip service resolves to its VIP; tasks. to the live tasks; dnsrr to the tasks', (t) => {
  t.deepEqual(data(ask('web')), ['100.64.1.2']);
  t.deepEqual(data(ask('tasks.web')), ['100.64.1.10', '100.64.1.11', '100.64.1.12']);
  t.deepEqual(data(ask('db')), ['100.64.1.20', '100.64.1.21']);
  t.deepEqual(data(ask('tasks.db')), ['100.64.1.20', '100.64.1.21']);
});

test('endpoint names, aliases and <name>.<network>; case-insensitive; trailing dot; answers echo the asked name', (t) => {
  t.deepEqual(data(ask('web-1')), ['100.64.1.10']);
  t.deepEqual(data(ask('FRONT')), ['100.64.1.10']);
  t.deepEqual(data(ask('Web.App.')), ['100.64.1.2']);
  t.deepEqual(data(ask('tasks.web.app')), ['100.64.1.10', '100.64.1.11', '100.64.1.12']);
  const outcome = ask('WEB-2.app.');
  t.is(outcome.kind === 'answer' && outcome.answers[0]!.name, 'WEB-2.app');
  t.is(outcome.kind === 'answer' && (outcome.answers[0] as { ttl?: number }).ttl, 5);
});

test('the same name on two attached networks gives both; <name>.<network> picks one', (t) => {
  const both: DnsClientView = { networks: [app, other] };
  t.deepEqual(data(ask('web-1', 'A', both)), ['100.64.1.10', '100.64.2.5']);
  t.deepEqual(data(ask('web-1.other', 'A', both)), ['100.64.2.5']);
});

test('the cluster domain: unknown names are NXDOMAIN, never forwarded; other names are forwarded', (t) => {
  t.like(ask('nosuch'), { kind: 'answer', rcode: 'NXDOMAIN' });
  t.like(ask('tasks.nosuch'), { kind: 'answer', rcode: 'NXDOMAIN' });
  t.like(ask('nosuch.app'), { kind: 'answer', rcode: 'NXDOMAIN' });
  t.like(ask('www.example.com'), { kind: 'forward' });
  t.like(ask('web-1.other'), { kind: 'forward' }, 'a network the sandbox is not on is not the cluster domain for it');
});

test('a known name without records of the type asked is an empty NOERROR, never forwarded', (t) => {
  for (const type of ['AAAA', 'MX', 'TXT']) t.deepEqual(ask('web', type), { kind: 'answer', rcode: 'NOERROR', answers: [], additionals: [] });
  t.deepEqual(data(ask('web', 'ANY')).length, 3, 'ANY: the VIP and the two SRV records');
});

test('PTR for endpoint IPs and VIPs; unknown addresses in an attached subnet are NXDOMAIN; others forwarded', (t) => {
  t.deepEqual(data(ask('10.1.64.100.in-addr.arpa', 'PTR')), ['web-1.app']);
  t.deepEqual(data(ask('2.1.64.100.in-addr.arpa.', 'PTR')), ['web.app']);
  t.like(ask('99.1.64.100.in-addr.arpa', 'PTR'), { kind: 'answer', rcode: 'NXDOMAIN' });
  t.like(ask('8.8.8.8.in-addr.arpa', 'PTR'), { kind: 'forward' });
  t.like(ask('5.2.64.100.in-addr.arpa', 'PTR'), { kind: 'forward' }, 'another network\'s address is not this sandbox\'s business');
});

test('SRV: _proto.service, _port._proto.service and the bare name; vip targets the service, dnsrr the tasks; A records in additionals', (t) => {
  const srv = ask('_tcp.web', 'SRV');
  t.true(srv.kind === 'answer');
  if (srv.kind !== 'answer') return;
  t.deepEqual(srv.answers.map((a) => rdata(a)), [{ priority: 0, weight: 10, port: 80, target: 'web.app' }]);
  t.deepEqual(srv.additionals.map((a) => rdata(a)), ['100.64.1.2']);
  t.is(data(ask('web', 'SRV')).length, 2);
  t.deepEqual(data(ask('_53._udp.web', 'SRV')), [JSON.stringify({ priority: 0, weight: 10, port: 53, target: 'web.app' })]);
  t.deepEqual(data(ask('_80._udp.web', 'SRV')), []);
  const rr = ask('_tcp.db.app', 'SRV');
  t.true(rr.kind === 'answer' && rr.answers.every((a) => (rdata(a) as { target: string }).target === 'tasks.db.app'));
  t.like(ask('_tcp.nosuch', 'SRV'), { kind: 'answer', rcode: 'NXDOMAIN' });
});

test('answers are shuffled with the given random source: a permutation of the same set', (t) => {
  fc.assert(
    fc.property(fc.array(fc.double({ min: 0, max: 0.999, noNaN: true }), { minLength: 3, maxLength: 3 }), (randoms) => {
      let i = 0;
      const outcome = answerQuestion(view, { name: 'tasks.web', type: 'A' }, { ttl: 5, random: () => randoms[i++ % randoms.length]! });
      return outcome.kind === 'answer' && JSON.stringify(outcome.answers.map((a) => rdata(a)).sort()) === JSON.stringify(['100.64.1.10', '100.64.1.11', '100.64.1.12']);
    }),
  );
  const orders = new Set([0.1, 0.5, 0.9].map((r) => JSON.stringify(data({ ...answerQuestion(view, { name: 'tasks.web', type: 'A' }, { ttl: 5, random: () => r }) }))));
  t.is(orders.size, 1, 'same set whatever the order');
});

test('names never leak across networks: names of a network outside the view never resolve to its addresses', (t) => {
  const appNames = ['web', 'tasks.web', 'db', 'tasks.db', 'web-1', 'web-2', 'front', 'db-1', 'web.app', 'web-1.app'];
  const appIps = new Set(['100.64.1.2', ...app.endpoints.map((e) => e.ip)]);
  const onlyOther: DnsClientView = { networks: [other] };
  fc.assert(
    fc.property(fc.constantFrom(...appNames), fc.constantFrom('A', 'ANY', 'SRV'), fc.boolean(), (name, type, upper) => {
      const outcome = answerQuestion(onlyOther, { name: upper ? name.toUpperCase() : name, type }, opts);
      return outcome.kind === 'forward' || outcome.answers.every((a) => !appIps.has(String(rdata(a))));
    }),
  );
  t.pass();
});
