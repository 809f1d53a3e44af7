// The ingress routing mesh without a kernel: `service create --publish`
// parsing, the ingress sandbox's table and its listing read back (captured
// from nft 1.0.6), the sieve keeping a published port with its oldest
// service, and the host's publish table taking the mesh's ports beside the
// sandboxes' (a `weft run -p` keeps a port it had first).
import test from 'ava';
import { parseServicePublication, parseServicePublications, ServicePublishError } from '../../lib/service-publish-spec.ts';
import { parseIngressListing, renderIngressTable } from '../../dataplane/ingress.ts';
import { sieveServices } from '../../controlplane/services/service-sieve.ts';
import type { IngressPort } from '../../agent/overlay/publisher.ts';
import { localSandbox, testPublisher } from '../helpers/publisher-fixture.ts';
import { parsePublishSpec } from '../../lib/publish-spec.ts';
import { AgentError } from '../../agent/api/errors.ts';

test('--publish takes Swarm\'s short and long forms', (t) => {
  t.deepEqual(parseServicePublication('8080:80'), { published: 8080, target: 80, protocol: 'tcp', mode: 'ingress' });
  t.deepEqual(parseServicePublication('5353:53/udp'), { published: 5353, target: 53, protocol: 'udp', mode: 'ingress' });
  t.deepEqual(parseServicePublication('published=8080,target=80'), { published: 8080, target: 80, protocol: 'tcp', mode: 'ingress' });
  t.deepEqual(parseServicePublication('target=53,published=5353,protocol=udp,mode=ingress'), { published: 5353, target: 53, protocol: 'udp', mode: 'ingress' });
  t.deepEqual(parseServicePublication('published=8080,target=80,mode=host'), { published: 8080, target: 80, protocol: 'tcp', mode: 'host' });
});

test('--publish refuses what it cannot do, saying what to write', (t) => {
  const refused = (spec: string, message: RegExp) => t.throws(() => parseServicePublication(spec), { instanceOf: ServicePublishError, message }, spec);
  refused('80', /is not a service publication: write PUBLISHED:TARGET/);
  refused('0:80', /published port must be 1-65535/);
  refused('8080:70000', /target port must be 1-65535/);
  refused('8080:80/sctp', /tcp or udp, not "sctp"/);
  refused('published=8080', /target port must be 1-65535, got ""/);
  refused('published=8080,target=80,mode=global', /mode is ingress \(every host\) or host \(hosts running a backend\), not "global"/);
  refused('published=8080,target=80,size=3', /"size=3" is not published=/);
  refused('published=8080,published=8081,target=80', /published= is given twice/);
  t.throws(() => parseServicePublications(['8080:80', '8080:81']), { message: /8080\/tcp is given twice/ });
  t.notThrows(() => parseServicePublications(['8080:80', '8080:80/udp']));
});

test('the ingress table: DNAT to one live backend per published port, masquerade to the overlay, reject without backends', (t) => {
  t.is(renderIngressTable([]), undefined);
  const text = renderIngressTable([
    { published: 8080, protocol: 'tcp', target: 80, backends: ['100.64.0.9', '100.64.0.3', '100.64.0.9'] },
    { published: 5353, protocol: 'udp', target: 53, backends: ['100.64.0.3'] },
    { published: 9000, protocol: 'tcp', target: 90, backends: [] },
  ])!.join('\n');
  t.regex(text, /iifname "egress0" ct state new meta l4proto \. th dport vmap \{ udp \. 5353 : jump pub_udp_5353, tcp \. 8080 : jump pub_tcp_8080, tcp \. 9000 : jump pub_tcp_9000 \}/);
  t.regex(text, /meta l4proto tcp dnat ip to numgen random mod 2 map \{ 0 : 100\.64\.0\.3 \. 80, 1 : 100\.64\.0\.9 \. 80 \}/);
  t.regex(text, /meta l4proto udp dnat ip to 100\.64\.0\.3:53/);
  t.regex(text, /chain pub_tcp_9000 \{\n {4}meta l4proto tcp reject with tcp reset\n {4}reject/);
  t.regex(text, /oifname != "egress0" ct status dnat masquerade/);
  t.throws(() => renderIngressTable([{ published: 1, protocol: 'tcp', target: 1, backends: ['not-an-ip'] }]), { message: /not an IPv4 address/ });
});

test('the ingress listing read back: each chain\'s DNAT targets', (t) => {
  // `nft -j list table ip weft_ingress` (nft 1.0.6) for a two-backend and a one-backend chain.
  const listing = JSON.stringify({ nftables: [
    { metainfo: { version: '1.0.6' } },
    { table: { family: 'ip', name: 'weft_ingress' } },
    { chain: { family: 'ip', table: 'weft_ingress', name: 'prerouting' } },
    { chain: { family: 'ip', table: 'weft_ingress', name: 'pub_tcp_8080' } },
    { chain: { family: 'ip', table: 'weft_ingress', name: 'pub_udp_5353' } },
    { rule: { family: 'ip', table: 'weft_ingress', chain: 'pub_tcp_8080', expr: [{ match: { op: '==', left: { meta: { key: 'l4proto' } }, right: 'tcp' } }, { dnat: { family: 'ip', addr: { map: { key: { numgen: { mode: 'random', mod: 2, offset: 0 } }, data: { set: [[0, { concat: ['10.0.0.3', 80] }], [1, { concat: ['10.0.0.2', 80] }]] } } } } }] } },
    { rule: { family: 'ip', table: 'weft_ingress', chain: 'pub_udp_5353', expr: [{ match: { op: '==', left: { meta: { key: 'l4proto' } }, right: 'udp' } }, { dnat: { addr: '10.0.0.2', port: 53 } }] } },
  ] });
  const chains = parseIngressListing(listing);
  t.deepEqual(chains.get('pub_tcp_8080'), ['10.0.0.2:80', '10.0.0.3:80']);
  t.deepEqual(chains.get('pub_udp_5353'), ['10.0.0.2:53']);
  t.deepEqual(chains.get('prerouting'), []);
});

const SELF = 'a'.repeat(32);
const svc = (name: string, vip: string, published: number) => ({ name, networkId: 'n', mode: 'vip' as const, vip, ports: [], publish: [{ published, protocol: 'tcp' as const }] });

test('the sieve: a published port stays with its oldest service, whichever host wrote the newer one', (t) => {
  const ranges = new Map([['n', { subnet: '10.9.0.0/24', gateway: '10.9.0.1' }]]);
  const candidates = [
    { service: svc('late', '10.9.0.6', 8080), lamport: 9, owner: SELF },
    { service: svc('first', '10.9.0.5', 8080), lamport: 3, owner: 'b'.repeat(32) },
    { service: svc('other', '10.9.0.7', 8081), lamport: 10, owner: SELF },
  ];
  const sieved = sieveServices(candidates, ranges);
  t.deepEqual(sieved.services.map((s) => s.name).sort(), ['first', 'other']);
  t.deepEqual(sieved.refused, [{ name: 'late', problem: 'published port 8080/tcp belongs to the older service "first"' }]);
});

test('the host table takes the mesh\'s ports to the ingress sandbox; -p is refused on them and keeps a port it had first', async (t) => {
  const mesh: IngressPort[] = [{ service: 'web', published: 8080, protocol: 'tcp', targetIp: '198.19.255.9', targetPort: 8080 }, { service: 'dns', published: 5353, protocol: 'udp', targetIp: '198.19.255.9', targetPort: 5353 }];
  const { p, applied } = testPublisher({
    sandboxes: [localSandbox('198.19.255.2', [{ hostIp: '0.0.0.0', hostPort: 5353, port: 53, protocol: 'udp' }])],
    listeners: [{ protocol: 'tcp', address: '0.0.0.0', port: 22 }],
    ingress: mesh,
  });
  await p.sync();
  t.deepEqual(applied[0], [
    { hostIp: '0.0.0.0', hostPort: 5353, protocol: 'udp', targetIp: '198.19.255.2', targetPort: 53 },
    { hostIp: '0.0.0.0', hostPort: 8080, protocol: 'tcp', targetIp: '198.19.255.9', targetPort: 8080 },
  ], 'the mesh port a sandbox published first stays the sandbox\'s');
  t.deepEqual(p.ingressShadowed().map((s) => s.service), ['dns']);
  t.regex((await p.doctor())[0]!.problem, /5353\/udp does not reach the service on this host: a local sandbox publishes it/);
  await t.throwsAsync(p.claim(parsePublishSpec('198.18.0.1:8080:80')), { instanceOf: AgentError, message: /service "web" publishes 8080\/tcp on every host/ });
  t.regex((await p.ingressConflict([{ published: 22, protocol: 'tcp' }]))!, /a process on this host listens on \*:22\/tcp/);
  t.regex((await p.ingressConflict([{ published: 5353, protocol: 'udp' }]))!, /0\.0\.0\.0:5353->53\/udp is already published on this host/);
  t.regex((await p.ingressConflict([{ published: 4789, protocol: 'udp' }]))!, /VXLAN/);
  t.is(await p.ingressConflict([{ published: 8081, protocol: 'tcp' }]), undefined);
});
