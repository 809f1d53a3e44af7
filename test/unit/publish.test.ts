// Host port publishing without a kernel: `-p` parsing, the table it renders,
// the listing read back (captured from nft 1.0.6), the `ss` parser, and the
// publisher's refusals and free-port choice against a model of the host.
import test from 'ava';
import { readFileSync } from 'node:fs';
import { parsePublishSpec, parsePublishSpecs, formatPublication, PublishSpecError } from '../../lib/publish-spec.ts';
import { parseAddresses, parseListeners, parsePublishListing, renderPublishTable, type PublishRule } from '../../dataplane/publish.ts';
import { Publisher, RANDOM_PORT_FIRST, RANDOM_PORT_LAST } from '../../agent/overlay/publisher.ts';
import { localSandbox, testPublisher } from '../helpers/publisher-fixture.ts';
import { AgentError } from '../../agent/api/errors.ts';

test('-p takes Docker\'s forms: HOSTPORT:PORT, IP:HOSTPORT:PORT, IP::PORT, PORT, ranges, /udp', (t) => {
  t.deepEqual(parsePublishSpec('8080:80'), [{ hostIp: '0.0.0.0', hostPort: 8080, port: 80, protocol: 'tcp' }]);
  t.deepEqual(parsePublishSpec('127.0.0.1:8080:80/tcp'), [{ hostIp: '127.0.0.1', hostPort: 8080, port: 80, protocol: 'tcp' }]);
  t.deepEqual(parsePublishSpec('192.0.2.1::53/udp'), [{ hostIp: '192.0.2.1', hostPort: 0, port: 53, protocol: 'udp' }]);
  t.deepEqual(parsePublishSpec('80'), [{ hostIp: '0.0.0.0', hostPort: 0, port: 80, protocol: 'tcp' }]);
  t.deepEqual(parsePublishSpec('8000-8002:80-82').map(formatPublication), ['0.0.0.0:8000->80/tcp', '0.0.0.0:8001->81/tcp', '0.0.0.0:8002->82/tcp']);
  t.is(parsePublishSpec('9000-9009').length, 10, 'a sandbox range without host ports: a free one each');
});

test('-p refuses what is not a publication, saying what to write', (t) => {
  for (const [spec, message] of [
    ['80:8080:1', /is not a port publication: write \[IP:\]\[HOSTPORT:\]PORT/],
    ['8080:0', /port 0 is not a port/],
    ['70000:80', /host port 70000 is not a port/],
    ['999.1.1.1:80:80', /999\.1\.1\.1 is not an IPv4 address/],
    ['8080:80/sctp', /the protocol is tcp or udp/],
    ['8000-8001:80-82', /the host range has 2 ports and the sandbox range 3/],
    ['8010-8000:80-90', /runs backwards/],
    ['1-2000', /at most 1024 ports/],
    ['', /is not a port publication/],
  ] as const) {
    t.throws(() => parsePublishSpec(spec), { instanceOf: PublishSpecError, message }, spec);
  }
  t.throws(() => parsePublishSpecs(['8080:80', '127.0.0.1:8080:81']), { message: /host port 8080\/tcp is given twice/ });
  t.notThrows(() => parsePublishSpecs(['8080:80', '8080:80/udp', '80', '80']), 'tcp and udp are different ports; free ports are chosen apart');
});

const rules: PublishRule[] = [
  { hostIp: '0.0.0.0', hostPort: 8080, protocol: 'tcp', targetIp: '198.19.255.2', targetPort: 80 },
  { hostIp: '0.0.0.0', hostPort: 5353, protocol: 'udp', targetIp: '198.19.255.3', targetPort: 53 },
  { hostIp: '127.0.0.1', hostPort: 9090, protocol: 'tcp', targetIp: '198.19.255.2', targetPort: 90 },
];

test('the table: publications in two maps, DNAT on prerouting and output, masquerade only for localhost and hairpin', (t) => {
  const text = renderPublishTable(rules, '198.19.255.0/24').join('\n');
  t.regex(text, /map any_address \{\n {4}type inet_proto \. inet_service : ipv4_addr \. inet_service;\n {4}elements = \{ tcp \. 8080 : 198\.19\.255\.2 \. 80, udp \. 5353 : 198\.19\.255\.3 \. 53 \}/);
  t.regex(text, /elements = \{ 127\.0\.0\.1 \. tcp \. 9090 : 198\.19\.255\.2 \. 90 \}/);
  t.regex(text, /type nat hook prerouting priority dstnat; policy accept;\n {4}fib daddr type local ip daddr != 198\.19\.255\.1 jump publish/);
  t.regex(text, /type nat hook output priority -100; policy accept;\n {4}fib daddr type local ip daddr != 198\.19\.255\.1 jump publish/);
  t.regex(text, /iifname "weft_gw" ip daddr 127\.0\.0\.0\/8 drop/, 'route_localnet opens nothing to the sandboxes');
  t.regex(text, /oifname "weft_gw" ip saddr 127\.0\.0\.0\/8 masquerade\n {4}oifname "weft_gw" ip saddr 198\.19\.255\.0\/24 ct status dnat masquerade\n/);
  t.notRegex(text, /oifname != /, 'outside clients are never masqueraded: the sandbox sees their address');
  t.notRegex(renderPublishTable([], '198.19.255.0/24').join('\n'), /elements/, 'nothing published: empty maps (nft refuses an empty list)');
  t.throws(() => renderPublishTable([{ ...rules[0]!, hostPort: 0 }], '198.19.255.0/24'), { message: /host port 0/ });
  t.throws(() => renderPublishTable([{ ...rules[0]!, targetIp: '1.2.3' }], '198.19.255.0/24'));
});

test('the listing read back from nft holds exactly the rendered elements', (t) => {
  const maps = parsePublishListing(readFileSync(new URL('fixtures/publish-table.json', import.meta.url), 'utf8'));
  t.deepEqual([...maps.get('any_address')!].sort(), ['tcp . 8080 : 198.19.255.2 . 80', 'udp . 5353 : 198.19.255.3 . 53']);
  t.deepEqual([...maps.get('one_address')!], ['127.0.0.1 . tcp . 9090 : 198.19.255.2 . 90']);
});

test('ip -j addr: the host\'s IPv4 addresses', (t) => {
  const json = JSON.stringify([
    { ifname: 'lo', addr_info: [{ family: 'inet', local: '127.0.0.1', prefixlen: 8 }] },
    { ifname: 'eth0', addr_info: [{ family: 'inet', local: '198.18.0.1', prefixlen: 15 }] },
    { ifname: 'dummy0' },
  ]);
  t.deepEqual(parseAddresses(json), ['127.0.0.1', '198.18.0.1']);
});

test('ss listing: wildcards (v4, v6, *), IPv4-mapped and scoped addresses count; IPv6-only ones do not', (t) => {
  const out = [
    'tcp   LISTEN 0      4096         0.0.0.0:22        0.0.0.0:*',
    'tcp   LISTEN 0      4096   127.0.0.53%lo:53        0.0.0.0:*',
    'tcp   LISTEN 0      4096            [::]:8443         [::]:*',
    'tcp   LISTEN 0      4096           [::1]:631          [::]:*',
    'tcp   LISTEN 0      4096  [::ffff:198.18.0.1]:2377    *:*',
    'udp   UNCONN 0      0                  *:68             *:*',
    'garbage',
  ].join('\n');
  t.deepEqual(parseListeners(out), [
    { protocol: 'tcp', address: '0.0.0.0', port: 22 },
    { protocol: 'tcp', address: '127.0.0.53', port: 53 },
    { protocol: 'tcp', address: '0.0.0.0', port: 8443 },
    { protocol: 'tcp', address: '198.18.0.1', port: 2377 },
    { protocol: 'udp', address: '0.0.0.0', port: 68 },
  ]);
});

test('claim: a port already published, one a host process listens on, the VXLAN port are refused with what to do', async (t) => {
  const { p } = testPublisher({
    sandboxes: [localSandbox('198.19.255.2', [{ hostIp: '0.0.0.0', hostPort: 8080, port: 80, protocol: 'tcp' }])],
    listeners: [{ protocol: 'tcp', address: '198.18.0.1', port: 2377 }, { protocol: 'udp', address: '0.0.0.0', port: 5353 }],
  });
  const refused = async (spec: string, message: RegExp) => {
    const error = await t.throwsAsync(p.claim(parsePublishSpec(spec)), { instanceOf: AgentError, message }, spec);
    t.regex(error!.message, /choose another host port, or leave it out/);
  };
  await refused('127.0.0.1:8080:81', /0\.0\.0\.0:8080->80\/tcp is already published on this host/);
  await refused('2377:80', /a process on this host listens on 198\.18\.0\.1:2377\/tcp/);
  await refused('198.18.0.1:2377:80', /listens on 198\.18\.0\.1:2377/);
  await refused('5353:53/udp', /listens on \*:5353\/udp/);
  await refused('4789:80/udp', /VXLAN/);
  t.deepEqual(await p.claim(parsePublishSpec('127.0.0.1:2377:80')), parsePublishSpec('127.0.0.1:2377:80'), 'another address of the same port is free');
  await t.throwsAsync(p.claim(parsePublishSpec('192.0.2.1:8181:80')), { message: /192\.0\.2\.1: it is not an address of this host \(127\.0\.0\.1, 198\.18\.0\.1\)/ });
  t.deepEqual(await p.claim(parsePublishSpec('8080:80/udp')), parsePublishSpec('8080:80/udp'), 'the same port over another protocol is free');
});

test('claim: a free host port skips published and listened ones, and two in one request differ', async (t) => {
  const { p } = testPublisher({
    sandboxes: [localSandbox('198.19.255.2', [{ hostIp: '0.0.0.0', hostPort: RANDOM_PORT_FIRST, port: 80, protocol: 'tcp' }])],
    listeners: [{ protocol: 'tcp', address: '0.0.0.0', port: RANDOM_PORT_FIRST + 1 }],
  });
  const claimed = await p.claim(parsePublishSpecs(['80', '81', `${RANDOM_PORT_FIRST + 3}:82`]));
  t.deepEqual(claimed.map((c) => [c.hostPort, c.port]), [[RANDOM_PORT_FIRST + 3, 82], [RANDOM_PORT_FIRST + 2, 80], [RANDOM_PORT_FIRST + 4, 81]]);
  const end = testPublisher({ random: 0.999_999_9 });
  t.is((await end.p.claim(parsePublishSpec('80')))[0]!.hostPort, RANDOM_PORT_LAST, 'the range ends at its last port');
});

test('the table follows the local sandboxes: plugged ones only, each port to its own gateway address', async (t) => {
  const sandboxes = [
    localSandbox('198.19.255.2', [{ hostIp: '0.0.0.0', hostPort: 8080, port: 80, protocol: 'tcp' }]),
    localSandbox('', [{ hostIp: '0.0.0.0', hostPort: 8081, port: 80, protocol: 'tcp' }]),
  ];
  const { p, applied } = testPublisher({ sandboxes });
  await p.sync();
  t.deepEqual(applied, [[{ hostIp: '0.0.0.0', hostPort: 8080, protocol: 'tcp', targetIp: '198.19.255.2', targetPort: 80 }]]);
  sandboxes.shift();
  await p.sync();
  t.deepEqual(applied[1], [], 'a sandbox that went takes its ports with it');
  t.deepEqual(Publisher.describe(sandboxes[0]!), ['0.0.0.0:8081->80/tcp']);
});
