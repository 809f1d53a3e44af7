// Bandwidth limits (CNI `bandwidth`): what the plugin takes from its
// configuration and the capability, what the agent's API takes, the check
// against the link's MTU, and how CHECK and `weft doctor` read the kernel.
import test from 'ava';
import { parseConfig } from '../../agent/cni/cni-config.ts';
import { CniError } from '../../agent/cni/cni-error.ts';
import { sandboxCreateRequest } from '../../agent/api/schemas.ts';
import { burstTooSmall, entryOf, MAX_BURST_BITS, MAX_RATE_BITS } from '../../lib/bandwidth.ts';
import { ifbNameFor, leftoverIfbs, shapingProblems } from '../../dataplane/bandwidth.ts';
import { parseLinks } from '../../dataplane/links.ts';

const good = { cniVersion: '1.0.0', name: 'weftnet', type: 'weft', network: 'blue' };
const parse = (extra: object) => parseConfig(JSON.stringify({ ...good, ...extra }));
const failure = (extra: object): CniError => {
  try {
    parse(extra);
  } catch (error) {
    if (error instanceof CniError) return error;
    throw error;
  }
  throw new Error('parsed');
};

test('the capability (runtimeConfig.bandwidth) gives limits in bits, one direction or both', (t) => {
  t.is(parse({}).bandwidth, undefined);
  t.deepEqual(parse({ runtimeConfig: { bandwidth: { egressRate: 1_000_000, egressBurst: 100_000 } } }).bandwidth, { egress: { rateBits: 1_000_000, burstBits: 100_000 } });
  t.deepEqual(parse({ runtimeConfig: { bandwidth: { ingressRate: 2048, ingressBurst: 1600, egressRate: 4096, egressBurst: 1600 } } }).bandwidth,
    { ingress: { rateBits: 2048, burstBits: 1600 }, egress: { rateBits: 4096, burstBits: 1600 } });
  t.is(parse({ runtimeConfig: { bandwidth: { ingressRate: 0, ingressBurst: 0 } } }).bandwidth, undefined, 'zero is no limit');
});

test('static limits: the stock plugin\'s top-level fields or a bandwidth object, winning over the capability', (t) => {
  const capability = { runtimeConfig: { bandwidth: { egressRate: 9000, egressBurst: 90000 } } };
  t.deepEqual(parse({ ingressRate: 8000, ingressBurst: 80000, ...capability }).bandwidth, { ingress: { rateBits: 8000, burstBits: 80000 } });
  t.deepEqual(parse({ bandwidth: { egressRate: 8000, egressBurst: 80000 }, ...capability }).bandwidth, { egress: { rateBits: 8000, burstBits: 80000 } });
  t.is(failure({ ingressRate: 8000, ingressBurst: 80000, bandwidth: { egressRate: 1, egressBurst: 1 } }).code, 7);
});

test('bad limits are error 7 naming the field', (t) => {
  const bad: Array<[object, RegExp]> = [
    [{ egressRate: 1_000_000 }, /egressBurst must be set too/],
    [{ egressBurst: 1_000_000 }, /egressRate must be set too/],
    [{ ingressRate: -1, ingressBurst: 10 }, /ingressRate.*must not be negative/],
    [{ ingressRate: 1.5, ingressBurst: 10 }, /ingressRate.*whole number/],
    [{ ingressRate: '1mbit', ingressBurst: 10 }, /ingressRate.*must be a number/],
    [{ ingressRate: MAX_RATE_BITS + 1, ingressBurst: 10 }, /ingressRate.*at most/],
    [{ ingressRate: 1000, ingressBurst: MAX_BURST_BITS + 1 }, /ingressBurst.*at most/],
    [{ ingressRate: 4, ingressBurst: 100_000 }, /at least 8 bits per second/],
  ];
  for (const [entry, message] of bad) {
    for (const where of [{ runtimeConfig: { bandwidth: entry } }, entry, { bandwidth: entry }]) {
      const error = failure(where);
      t.is(error.code, 7, JSON.stringify(where));
      t.regex(`${error.message} ${error.details}`, message, JSON.stringify(where));
    }
  }
  t.is(failure({ runtimeConfig: { bandwidth: 'fast' } }).code, 7);
});

test('the agent\'s API takes the same entry (null: none) and checks it again', (t) => {
  const base = { networks: ['blue'], name: '', aliases: [], netns: '/run/netns/c', command: [], containerId: 'c1', ifname: 'eth0' };
  t.is(sandboxCreateRequest.parse({ ...base, bandwidth: null }).bandwidth, undefined);
  t.deepEqual(sandboxCreateRequest.parse({ ...base, bandwidth: entryOf({ egress: { rateBits: 1e6, burstBits: 1e5 } }) }).bandwidth, { egress: { rateBits: 1e6, burstBits: 1e5 } });
  t.false(sandboxCreateRequest.safeParse({ ...base, bandwidth: { egressRate: 1e6, egressBurst: 0 } }).success);
  t.false(sandboxCreateRequest.safeParse({ ...base, bandwidth: { egressRate: 2 ** 64, egressBurst: 1 } }).success, 'a huge uint64 from the codec');
});

test('a burst smaller than one full-size packet is refused: tbf would drop every larger packet', (t) => {
  t.regex(burstTooSmall({ egress: { rateBits: 1e6, burstBits: 1600 } }, 1450) ?? '', /egressBurst 1600 bits .* at least 11712/);
  t.is(burstTooSmall({ egress: { rateBits: 1e6, burstBits: 11712 } }, 1450), undefined);
  t.is(burstTooSmall({ ingress: { rateBits: 1e6, burstBits: 2 ** 31 - 1 } }, 1450), undefined, 'what Kubernetes sends');
});

test('CHECK reads drift: a missing tbf, a wrong rate, a lost redirect, an unwanted limit', (t) => {
  const want = { ingress: { rateBits: 2_000_000, burstBits: 200_000 }, egress: { rateBits: 1_000_000, burstBits: 100_000 } };
  const asMade = { ingress: { rateBytes: 250_000, burstBytes: 25_000 }, egress: { rateBytes: 125_000, burstBytes: 12_500 }, redirected: true };
  t.deepEqual(shapingProblems(want, asMade), []);
  t.regex(shapingProblems(want, { ...asMade, ingress: undefined }).join(), /ingress limit of 2000000 bit\/s is missing/);
  t.regex(shapingProblems(want, { ...asMade, egress: { rateBytes: 1_250_000, burstBytes: 1 } }).join(), /egress rate is 10000000 bit\/s/);
  t.regex(shapingProblems(want, { ...asMade, redirected: false }).join(), /not redirected/);
  t.regex(shapingProblems({ egress: want.egress }, asMade).join(), /ingress is limited/);
});

test('an ifb whose veth is gone is a leftover; one with its veth is not', (t) => {
  t.is(ifbNameFor('v0123456789ab'), 'ifb0123456789ab');
  const link = (ifname: string, kind: string) => ({ ifindex: 1, ifname, mtu: 1450, flags: ['UP'], linkinfo: { info_kind: kind } });
  const links = parseLinks([link('br0', 'bridge'), link('v0123456789ab', 'veth'), link('ifb0123456789ab', 'ifb'), link('ifbaaaaaaaaaaaa', 'ifb'), link('ifb0', 'ifb')]);
  t.deepEqual(leftoverIfbs(links), ['ifbaaaaaaaaaaaa'], 'only weft\'s names, only without their veth');
});

test('limits are read for ADD only: DEL and CHECK with limits ADD would refuse go through', (t) => {
  for (const bad of [{ runtimeConfig: { bandwidth: { egressRate: 10 ** 15, egressBurst: 1 } } }, { egressRate: 'fast' }, { ingressRate: 8000, ingressBurst: 80000, bandwidth: { egressRate: 1, egressBurst: 1 } }]) {
    const text = JSON.stringify({ ...good, ...bad });
    t.is(failure(bad).code, 7, 'ADD refuses them');
    t.is(parseConfig(text, 'DEL').bandwidth, undefined);
    t.is(parseConfig(text, 'CHECK').bandwidth, undefined);
  }
});
