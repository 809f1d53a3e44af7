// The load-balancing table as text: what a service renders to, when an update
// can touch only service chains, and which desired states are refused.
import test from 'ava';
import { backendChanges, fullScript, incrementalScript, renderLb, validateServices, LbSpecError, type LbService } from '../../dataplane/lb/index.ts';

const svc = (name: string, backends: string[], vip = '100.64.1.100'): LbService => ({ name, vip, backends, ports: [{ port: 80, protocol: 'tcp' }] });

test('backends are chosen by numgen over a sorted, de-duplicated list; one backend is a plain dnat', (t) => {
  const many = renderLb([svc('web', ['100.64.1.3', '100.64.1.2', '100.64.1.3'])]);
  t.is(many.chains.get('svc_web'), 'dnat to numgen random mod 2 map { 0 : 100.64.1.2, 1 : 100.64.1.3 }');
  t.is(renderLb([svc('web', ['100.64.1.2'])]).chains.get('svc_web'), 'dnat to 100.64.1.2');
  t.regex(many.dispatch, /ct state new ip daddr \. meta l4proto \. th dport vmap \{ 100\.64\.1\.100 \. tcp \. 80 : jump svc_web \}/);
});

test('a service with no backend rejects (TCP reset, else ICMP)', (t) => {
  t.is(renderLb([svc('web', [])]).chains.get('svc_web'), 'meta l4proto tcp reject with tcp reset\n    reject');
});

test('a backend change is an incremental update of that chain only; anything else rewrites the table', (t) => {
  const before = renderLb([svc('web', ['100.64.1.2']), svc('api', ['100.64.1.5'], '100.64.1.101')]);
  const after = renderLb([svc('web', ['100.64.1.2', '100.64.1.3']), svc('api', ['100.64.1.5'], '100.64.1.101')]);
  t.is(
    incrementalScript(before, after),
    'flush chain ip weft_lb svc_web\nadd rule ip weft_lb svc_web dnat to numgen random mod 2 map { 0 : 100.64.1.2, 1 : 100.64.1.3 }\n',
  );
  t.is(incrementalScript(after, after), '');
  t.is(incrementalScript(before, renderLb([svc('web', ['100.64.1.2'])])), undefined, 'a service went');
  t.is(incrementalScript(before, renderLb([svc('web', ['100.64.1.2'], '100.64.1.99'), svc('api', ['100.64.1.5'], '100.64.1.101')])), undefined, 'a VIP moved');
  const full = fullScript(after);
  t.true(full.startsWith('table ip weft_lb\ndelete table ip weft_lb\ntable ip weft_lb {'), 'replaced in one transaction');
  t.regex(full, /chain svc_api \{\n {4}dnat to 100\.64\.1\.5\n {2}\}/);
});

test('backend changes for the netlink fast path: only when nothing else changed and every changed chain keeps a backend', (t) => {
  const api = svc('api', ['100.64.1.5'], '100.64.1.101');
  const before = renderLb([svc('web', ['100.64.1.2']), api]);
  t.deepEqual(backendChanges(before, renderLb([svc('web', ['100.64.1.3', '100.64.1.2']), api])), [['svc_web', ['100.64.1.2', '100.64.1.3']]]);
  t.deepEqual(backendChanges(before, before), [], 'nothing changed');
  t.is(backendChanges(before, renderLb([svc('web', []), api])), undefined, 'the reject rule goes through nft');
  const huge = Array.from({ length: 1025 }, (_, i) => `100.65.${Math.floor(i / 250)}.${(i % 250) + 1}`);
  t.is(backendChanges(before, renderLb([svc('web', huge), api])), undefined, 'a map too large for one netlink attribute goes through nft');
  t.is(backendChanges(before, renderLb([svc('web', ['100.64.1.2'])])), undefined, 'a service went');
  t.is(backendChanges(before, renderLb([{ ...svc('web', ['100.64.1.2']), ports: [{ port: 81, protocol: 'tcp' }] }, api])), undefined, 'a port changed');
});

test('rendering does not depend on the order services or backends come in', (t) => {
  const a = renderLb([svc('web', ['100.64.1.2', '100.64.1.3']), svc('api', ['100.64.1.5'], '100.64.1.101')]);
  const b = renderLb([svc('api', ['100.64.1.5'], '100.64.1.101'), svc('web', ['100.64.1.3', '100.64.1.2'])]);
  t.is(fullScript(a), fullScript(b));
});

test('hostile desired state is refused before it reaches nft', (t) => {
  const refused = (services: LbService[], message: RegExp) => t.throws(() => validateServices(services), { instanceOf: LbSpecError, message });
  refused([svc('web; flush ruleset', [])], /is not a DNS label/);
  refused([svc('web', []), svc('web', [], '100.64.1.101')], /given twice/);
  refused([svc('web', [], '100.64.1.1 } ; flush ruleset')], /VIP .* is not an IPv4 address/);
  refused([svc('web', ['100.64.1.2, 0 : 1.2.3.4'])], /backend .* is not an IPv4 address/);
  refused([{ ...svc('web', []), ports: [{ port: 0, protocol: 'tcp' }] }], /port 0 is not 1-65535/);
  refused([{ ...svc('web', []), ports: [{ port: 80, protocol: 'sctp' as 'tcp' }] }], /protocol "sctp" is not tcp or udp/);
  refused([svc('web', []), svc('api', [])], /100\.64\.1\.100:80\/tcp belongs to two services/);
});
