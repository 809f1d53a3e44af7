import test from 'ava';
import fc from 'fast-check';
import { AddressError, Allocator, cidrContains, formatCidr, formatIPv4, hostRange, parseCidr, parseIPv4, subnetAt, subnetCount, subnetIndex } from '../../controlplane/allocation/index.ts';

test('IPv4 addresses round-trip through integers', (t) => {
  t.is(parseIPv4('100.64.0.1'), 100 * 2 ** 24 + 64 * 2 ** 16 + 1);
  t.is(parseIPv4('255.255.255.255'), 2 ** 32 - 1);
  t.is(formatIPv4(0), '0.0.0.0');
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 2 ** 32 - 1 }), (n) => parseIPv4(formatIPv4(n)) === n),
    { numRuns: 500 },
  );
});

test('bad addresses and CIDRs are rejected with messages that say what is wrong', (t) => {
  const bad: [string, RegExp][] = [
    ['10.0.0/24', /four numbers/],
    ['10.0.0.0', /add a prefix length/],
    ['10.0.0.256/24', /"256" must be a number from 0 to 255/],
    ['10.0.01.0/24', /without leading zeros/],
    ['10.0.0.0/33', /bad prefix length "33"/],
    ['10.0.0.0/', /bad prefix length ""/],
    ['10.0.0.0/08', /bad prefix length "08"/],
    [' 10.0.0.0/24', /not a number|without leading zeros/],
    ['10.0.0.1/24', /host bits set: the network address of a \/24 containing it is 10\.0\.0\.0\/24/],
  ];
  t.throws(() => parseIPv4('1.2.3'), { message: /"1\.2\.3" is not an IPv4 address: expected four numbers/ });
  for (const [input, message] of bad) {
    const error = t.throws(() => parseCidr(input), { instanceOf: AddressError });
    t.regex(error?.message ?? '', message, input);
    t.is(error?.input, input, 'the error names the whole input');
  }
});

test('CIDRs map to integer ranges; host ranges skip network and broadcast', (t) => {
  const net = parseCidr('100.64.3.0/24');
  t.deepEqual(net, { start: parseIPv4('100.64.3.0'), end: parseIPv4('100.64.4.0'), prefix: 24 });
  t.is(formatCidr(net), '100.64.3.0/24');
  t.deepEqual(hostRange(net), { start: net.start + 1, end: net.end - 1 });
  const p2p = parseCidr('10.0.0.0/31');
  t.deepEqual(hostRange(p2p), { start: p2p.start, end: p2p.end });
  t.deepEqual(parseCidr('0.0.0.0/0'), { start: 0, end: 2 ** 32, prefix: 0 });
  t.true(cidrContains(parseCidr('100.64.0.0/10'), net));
  t.false(cidrContains(net, parseCidr('100.64.0.0/10')));
});

test('the default pool splits into indexed /24 subnets both ways', (t) => {
  const pool = parseCidr('100.64.0.0/10');
  t.is(subnetCount(pool, 24), 16384);
  t.is(formatCidr(subnetAt(pool, 24, 0)), '100.64.0.0/24');
  t.is(formatCidr(subnetAt(pool, 24, 16383)), '100.127.255.0/24');
  t.is(subnetIndex(pool, parseCidr('100.64.7.0/24')), 7);
  t.throws(() => subnetAt(pool, 24, 16384), { message: /outside 0..16383/ });
  t.throws(() => subnetIndex(pool, parseCidr('10.1.0.0/24')), { message: /10\.1\.0\.0\/24 is outside the address pool 100\.64\.0\.0\/10/ });
  t.throws(() => subnetCount(pool, 8), { message: /prefix must be between 10 and 32/ });
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 16383 }), (i) => subnetIndex(pool, subnetAt(pool, 24, i)) === i),
    { numRuns: 300 },
  );
});

test('the generic allocator hands out endpoint IPs of a subnet', (t) => {
  const net = parseCidr('100.64.3.0/29');
  const hosts = hostRange(net);
  const a = Allocator.init('a', 'ips/n1', hosts.start, hosts.end);
  const got: string[] = [];
  for (let i = 0; i < 6; i++) {
    const r = a.allocate([]);
    if (r.kind === 'allocated') got.push(formatIPv4(r.value));
  }
  t.deepEqual(got, ['100.64.3.1', '100.64.3.2', '100.64.3.3', '100.64.3.4', '100.64.3.5', '100.64.3.6']);
  const full = a.allocate([]);
  t.is(full.kind === 'failed' && full.error.code, 'exhausted');
});
