// The resolver's answers as a pure function of the asking sandbox's view.
import test from 'ava';
import type { Answer } from 'dns-packet';
import fc from 'fast-check';
import { answerQuestion, type DnsClientView, type DnsNetworkView, type DnsOutcome } from '../../controlplane/services/dns-answers.ts';

/** A record's data (the OPT pseudo-record has none). */
const rdata = (a: Answer): unknown => (a as { data?: unknown }).data;

const app: DnsNetworkView = {
  name: 'app',
  subnet: '100.64.1.0/24',
  services: [
    { name: 'web', mode: 'vip', vip: '100.64.1.2', ports: [{ port: 80, protocol: 'tcp' }, { port: 53, protocol: 'udp' }], backends: [{ ip: '100.64.1.10', name: 'web-1' }, { ip: '100.64.1.11', name: 'web-2' }, { ip: '100.64.1.12', name: '' }] },
    { name: 'db', mode: 'dnsrr', vip: '', ports: [{ port: 5432, protocol: 'tcp' }], backends: [{ ip: '100.64.1.20', name: 'db-1' }, { ip: '100.64.1.21', name: 'db-2' }] },
  ],
  endpoints: [
    { name: 'web-1', aliases: ['front', 'Shop.Example'], ip: '100.64.1.10' },
    { name: 'web-2', aliases: [], ip: '100.64.1.11' },
    { name: '', aliases: [], ip: '100.64.1.12' },
    { name: 'db-1', aliases: [], ip: '100.64.1.20' },
    { name: 'db-2', aliases: [], ip: '100.64.1.21' },
    { name: 'db-3', aliases: [], ip: '100.64.1.22' }, // unhealthy: an endpoint, not a backend
  ],
};
const other: DnsNetworkView = {
  name: 'other',
  subnet: '100.64.2.0/24',
  services: [{ name: 'cache', mode: 'vip', vip: '100.64.2.2', ports: [{ port: 6379, protocol: 'tcp' }], backends: [{ ip: '100.64.2.7', name: 'cache-1' }] }],
  endpoints: [{ name: 'web-1', aliases: [], ip: '100.64.2.5' }, { name: 'cache-1', aliases: [], ip: '100.64.2.7' }],
};
const view: DnsClientView = { networks: [app] };
const opts = { ttl: 5, random: () => 0.5 };

function ask(name: string, type = 'A', v: DnsClientView = view, cls?: string): DnsOutcome {
  return answerQuestion(v, { name, type, ...(cls ? { class: cls } : {}) }, opts);
}

function data(outcome: DnsOutcome): string[] {
  if (outcome.kind !== 'answer') return ['<forward>'];
  return outcome.answers.map((a) => {
    const value = rdata(a);
    return typeof value === 'string' ? value : JSON.stringify(value);
  }).sort();
}

const srv = (port: number, target: string): string => JSON.stringify({ priority: 0, weight: 10, port, target });

test('a vip service resolves to its VIP; tasks. to the live tasks; dnsrr to the tasks', (t) => {
  t.deepEqual(data(ask('web')), ['100.64.1.2']);
  t.deepEqual(data(ask('tasks.web')), ['100.64.1.10', '100.64.1.11', '100.64.1.12']);
  t.deepEqual(data(ask('db')), ['100.64.1.20', '100.64.1.21']);
  t.deepEqual(data(ask('tasks.db')), ['100.64.1.20', '100.64.1.21']);
  t.deepEqual(data(ask('100-64-1-20.tasks.db')), ['100.64.1.20'], 'a per-task name');
  t.like(ask('100-64-1-22.tasks.db'), { kind: 'answer', rcode: 'NXDOMAIN' }, 'not a live task');
});

test('endpoint names, aliases and <name>.<network>; case-insensitive; trailing dot; answers echo the asked name', (t) => {
  t.deepEqual(data(ask('web-1')), ['100.64.1.10']);
  t.deepEqual(data(ask('FRONT')), ['100.64.1.10']);
  t.deepEqual(data(ask('shop.example')), ['100.64.1.10'], 'an alias with a dot');
  t.deepEqual(data(ask('db-3')), ['100.64.1.22']);
  t.deepEqual(data(ask('Web.App.')), ['100.64.1.2']);
  t.deepEqual(data(ask('tasks.web.app')), ['100.64.1.10', '100.64.1.11', '100.64.1.12']);
  t.deepEqual(data(ask('front.app')), ['100.64.1.10']);
  const outcome = ask('WEB-2.app.');
  t.true(outcome.kind === 'answer');
  if (outcome.kind !== 'answer') return;
  t.is(outcome.answers[0]!.name, 'WEB-2.app');
  t.is((outcome.answers[0] as { ttl?: number }).ttl, 5);
  t.is(outcome.answers[0]!.type, 'A');
});

test('the same name on two attached networks gives both; <name>.<network> picks one', (t) => {
  const both: DnsClientView = { networks: [app, other] };
  t.deepEqual(data(ask('web-1', 'A', both)), ['100.64.1.10', '100.64.2.5']);
  t.deepEqual(data(ask('web-1.other', 'A', both)), ['100.64.2.5']);
  t.deepEqual(data(ask('web-1.app', 'A', both)), ['100.64.1.10']);
  t.deepEqual(data(ask('cache', 'A', both)), ['100.64.2.2']);
});

test('the cluster domain: unknown names are NXDOMAIN, never forwarded; other names are forwarded', (t) => {
  for (const name of ['nosuch', 'NoSuch.', 'tasks.nosuch', 'tasks.web.nosuch.app', '1-2-3-4.tasks.web', 'nosuch.app', 'a.b.c.app', '_tcp.nosuch', '_80._tcp.nosuch', '_http._tcp.web', '_tcp.web-1', '_tcp.nosuch.app']) {
    t.like(ask(name), { kind: 'answer', rcode: 'NXDOMAIN', answers: [] }, name);
  }
  for (const name of ['www.example.com', 'example.com.', 'web.example', 'tasks.web.example', '_tcp.example.com', '_http._tcp.example.com']) {
    t.like(ask(name), { kind: 'forward' }, name);
  }
  t.like(ask('web-1.other'), { kind: 'forward' }, 'a network the sandbox is not on is not the cluster domain for it');
  t.like(ask('web', 'TXT', view, 'CH'), { kind: 'forward' }, 'other classes are not the cluster\'s');
  t.deepEqual(data(ask('web', 'A', view, 'IN')), ['100.64.1.2']);
});

test('a known name without records of the type asked is an empty NOERROR, never forwarded', (t) => {
  const empty = { kind: 'answer', rcode: 'NOERROR', answers: [], additionals: [] };
  for (const type of ['AAAA', 'MX', 'TXT', 'CNAME', 'PTR']) {
    t.deepEqual(ask('web', type), empty, `web ${type}`);
    t.deepEqual(ask('web-1', type), empty, `web-1 ${type}`);
    t.deepEqual(ask('tasks.db.app', type), empty, `tasks.db.app ${type}`);
  }
  t.deepEqual(ask('_tcp.web', 'A'), empty, 'an SRV name asked for A');
  t.deepEqual(ask('_tcp.web', 'AAAA'), empty);
  t.deepEqual(ask('web-1', 'SRV'), empty, 'an endpoint has no SRV records');
  t.deepEqual(ask('2.1.64.100.in-addr.arpa', 'A'), empty, 'a known reverse name asked for A');
});

test('ANY answers what there is', (t) => {
  t.deepEqual(data(ask('web', 'ANY')), ['100.64.1.2', srv(53, 'web.app'), srv(80, 'web.app')]);
  t.deepEqual(data(ask('web-1', 'ANY')), ['100.64.1.10']);
  t.deepEqual(data(ask('10.1.64.100.in-addr.arpa', 'ANY')), ['web-1.app']);
});

test('PTR for endpoint IPs and VIPs; unknown addresses in an attached subnet are NXDOMAIN; others forwarded', (t) => {
  t.deepEqual(data(ask('10.1.64.100.in-addr.arpa', 'PTR')), ['web-1.app']);
  t.deepEqual(data(ask('2.1.64.100.IN-ADDR.ARPA.', 'PTR')), ['web.app']);
  const ptr = ask('2.1.64.100.In-Addr.Arpa.', 'PTR');
  t.is(ptr.kind === 'answer' && ptr.answers[0]!.name, '2.1.64.100.In-Addr.Arpa');
  t.like(ask('12.1.64.100.in-addr.arpa', 'PTR'), { kind: 'answer', rcode: 'NXDOMAIN' }, 'an endpoint without a name');
  t.like(ask('99.1.64.100.in-addr.arpa', 'PTR'), { kind: 'answer', rcode: 'NXDOMAIN' });
  t.like(ask('x.99.1.64.100.in-addr.arpa', 'PTR'), { kind: 'answer', rcode: 'NXDOMAIN' }, 'below an overlay address');
  t.like(ask('1.64.100.in-addr.arpa', 'PTR'), { kind: 'answer', rcode: 'NOERROR', answers: [] }, 'the subnet\'s own reverse zone');
  t.like(ask('64.100.in-addr.arpa', 'PTR'), { kind: 'forward' }, 'wider than the subnet');
  t.like(ask('8.8.8.8.in-addr.arpa', 'PTR'), { kind: 'forward' });
  t.like(ask('in-addr.arpa', 'NS'), { kind: 'forward' });
  t.like(ask('010.1.64.100.in-addr.arpa', 'PTR'), { kind: 'forward' }, 'not a canonical reverse name');
  t.like(ask('5.2.64.100.in-addr.arpa', 'PTR'), { kind: 'forward' }, 'another network\'s address is not this sandbox\'s business');
  const both: DnsClientView = { networks: [app, other] };
  t.deepEqual(data(ask('5.2.64.100.in-addr.arpa', 'PTR', both)), ['web-1.other']);
  t.deepEqual(data(ask('2.2.64.100.in-addr.arpa', 'PTR', both)), ['cache.other']);
});

test('SRV on a vip service: _proto, _port._proto and the bare name, targeting <service>.<network> with its A record', (t) => {
  const tcp = ask('_tcp.web', 'SRV');
  t.true(tcp.kind === 'answer');
  if (tcp.kind !== 'answer') return;
  t.deepEqual(tcp.answers.map(rdata), [{ priority: 0, weight: 10, port: 80, target: 'web.app' }]);
  t.is(tcp.answers[0]!.name, '_tcp.web');
  t.deepEqual(tcp.additionals, [{ type: 'A', name: 'web.app', ttl: 5, data: '100.64.1.2' }]);
  t.deepEqual(data(ask('web', 'SRV')), [srv(53, 'web.app'), srv(80, 'web.app')]);
  t.deepEqual(data(ask('_53._udp.web', 'SRV')), [srv(53, 'web.app')]);
  t.deepEqual(data(ask('_53._UDP.Web.App.', 'SRV')), [srv(53, 'web.app')]);
  t.like(ask('_80._udp.web', 'SRV'), { kind: 'answer', rcode: 'NOERROR', answers: [], additionals: [] }, 'no such port: an empty answer');
  // The target resolves through this resolver.
  t.deepEqual(data(ask('web.app')), ['100.64.1.2']);
});

test('SRV on dnsrr services and tasks.: one record per live task and port, per-task targets that resolve', (t) => {
  const rr = ask('_tcp.db.app', 'SRV');
  t.true(rr.kind === 'answer');
  if (rr.kind !== 'answer') return;
  t.deepEqual(data(rr), [srv(5432, '100-64-1-20.tasks.db.app'), srv(5432, '100-64-1-21.tasks.db.app')]);
  t.deepEqual(rr.additionals.map((a) => [a.name, rdata(a)]).sort(), [['100-64-1-20.tasks.db.app', '100.64.1.20'], ['100-64-1-21.tasks.db.app', '100.64.1.21']]);
  for (const a of rr.additionals) t.deepEqual(data(ask(a.name)), [String(rdata(a))], `${a.name} resolves`);
  t.is(data(ask('_tcp.tasks.web', 'SRV')).length, 3, 'tasks. of a vip service bypasses the VIP');
  t.is(data(ask('tasks.web', 'SRV')).length, 6, 'three tasks, two ports');
  t.deepEqual(data(ask('_53._udp.tasks.web.app', 'SRV')), ['100-64-1-10', '100-64-1-11', '100-64-1-12'].map((l) => srv(53, `${l}.tasks.web.app`)).sort());
});

test('answers are shuffled with the given random source: always a permutation, and every order shows up', (t) => {
  const expected = ['100.64.1.10', '100.64.1.11', '100.64.1.12'];
  fc.assert(
    fc.property(fc.array(fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true }), { minLength: 1, maxLength: 5 }), (randoms) => {
      let i = 0;
      const outcome = answerQuestion(view, { name: 'tasks.web', type: 'A' }, { ttl: 5, random: () => randoms[i++ % randoms.length]! });
      if (outcome.kind !== 'answer') return false;
      const order = outcome.answers.map((a) => String(rdata(a)));
      return JSON.stringify([...order].sort()) === JSON.stringify(expected);
    }),
    { numRuns: 500 },
  );
  const orders = new Set<string>();
  for (const first of [0.1, 0.5, 0.9]) {
    for (const second of [0.1, 0.9]) {
      const randoms = [first, second];
      const outcome = answerQuestion(view, { name: 'tasks.web', type: 'A' }, { ttl: 5, random: () => randoms.shift()! });
      if (outcome.kind === 'answer') orders.add(outcome.answers.map((a) => String(rdata(a))).join(','));
    }
  }
  t.is(orders.size, 6, 'all 3! orders');
});

test('the view is the only source: the same question on a different view object gets fresh answers', (t) => {
  const before: DnsClientView = { networks: [app] };
  const after: DnsClientView = { networks: [{ ...app, services: app.services.map((s) => (s.name === 'web' ? { ...s, vip: '100.64.1.3' } : s)) }] };
  t.deepEqual(data(ask('web', 'A', before)), ['100.64.1.2']);
  t.deepEqual(data(ask('web', 'A', after)), ['100.64.1.3']);
});

// Arbitrary views: networks with random names, services and endpoints.
const label = fc.stringMatching(/^[a-z][a-z0-9-]{0,6}$/).filter((s) => s !== 'tasks');
const arbNetwork = (octet: number): fc.Arbitrary<DnsNetworkView> =>
  fc.record({
    name: label,
    services: fc.uniqueArray(fc.record({ name: label, mode: fc.constantFrom('vip' as const, 'dnsrr' as const), backends: fc.uniqueArray(fc.integer({ min: 10, max: 200 }), { maxLength: 4 }) }), { maxLength: 3, selector: (s) => s.name }),
    endpoints: fc.array(fc.record({ name: label, aliases: fc.array(label, { maxLength: 2 }), host: fc.integer({ min: 10, max: 200 }) }), { maxLength: 5 }),
  }).map(({ name, services, endpoints }) => ({
    name,
    subnet: `100.64.${octet}.0/24`,
    services: services.map((s, i) => ({ name: s.name, mode: s.mode, vip: s.mode === 'vip' ? `100.64.${octet}.${2 + i}` : '', ports: [{ port: 80, protocol: 'tcp' as const }], backends: s.backends.map((h) => ({ ip: `100.64.${octet}.${h}`, name: '' })) })),
    endpoints: endpoints.map((e) => ({ name: e.name, aliases: e.aliases, ip: `100.64.${octet}.${e.host}` })),
  }));

function namesOf(network: DnsNetworkView): string[] {
  return [
    ...network.services.flatMap((s) => [s.name, `tasks.${s.name}`, `_tcp.${s.name}`, ...s.backends.map((b) => `${b.ip.replaceAll('.', '-')}.tasks.${s.name}`)]),
    ...network.endpoints.flatMap((e) => [e.name, ...e.aliases]),
  ].flatMap((n) => [n, `${n}.${network.name}`]);
}

test('names never leak across networks: no answer carries an address or name of a network outside the view', (t) => {
  fc.assert(
    fc.property(arbNetwork(1), arbNetwork(2), fc.constantFrom('A', 'ANY', 'SRV', 'PTR'), fc.boolean(), (mine, theirs, type, upper) => {
      fc.pre(mine.name !== theirs.name);
      const v: DnsClientView = { networks: [mine] };
      const questions = [...namesOf(theirs), ...theirs.endpoints.map((e) => `${e.ip.split('.').reverse().join('.')}.in-addr.arpa`)];
      for (const name of questions) {
        const outcome = answerQuestion(v, { name: upper ? name.toUpperCase() : name, type }, opts);
        if (outcome.kind === 'forward') continue;
        for (const record of [...outcome.answers, ...outcome.additionals]) {
          const text = JSON.stringify(rdata(record));
          if (text.includes('100.64.2.') || text.includes(`.${theirs.name}"`)) return false;
        }
      }
      return true;
    }),
    { numRuns: 300 },
  );
  t.pass();
});

test('every name of an attached network answers (never forwarded), and every A answer is an address of the view', (t) => {
  fc.assert(
    fc.property(arbNetwork(1), fc.constantFrom('A', 'AAAA', 'SRV', 'TXT'), (network, type) => {
      const v: DnsClientView = { networks: [network] };
      for (const name of namesOf(network)) {
        const outcome = answerQuestion(v, { name, type }, opts);
        if (outcome.kind !== 'answer' || outcome.rcode !== 'NOERROR') return false;
        if (outcome.answers.some((a) => a.type === 'A' && !String(rdata(a)).startsWith('100.64.1.'))) return false;
        if (type === 'AAAA' || type === 'TXT') if (outcome.answers.length > 0) return false;
      }
      return true;
    }),
    { numRuns: 300 },
  );
  t.pass();
});
