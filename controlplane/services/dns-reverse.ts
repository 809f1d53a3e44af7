// PTR: `d.c.b.a.in-addr.arpa` for the addresses of the asking sandbox's
// networks. An overlay address is never asked about upstream: inside an
// attached subnet, an unknown address is NXDOMAIN and a partial reverse name
// (`b.a.in-addr.arpa` within the subnet) is an empty NOERROR. Any other
// reverse name is the upstream's.
import type { Answer } from 'dns-packet';
import { cidrContains } from '../../lib/ipv4.ts';
import type { AnswerOptions, DnsClientView, DnsOutcome, DnsQuestion } from './dns-view.ts';
import { indexOf, type NetworkIndex } from './dns-index.ts';

export const REVERSE_SUFFIX = 'in-addr.arpa';
const OCTET = /^(0|[1-9]\d{0,2})$/;

export function isReverseName(name: string): boolean {
  return name === REVERSE_SUFFIX || name.endsWith(`.${REVERSE_SUFFIX}`);
}

export function answerReverse(view: DnsClientView, question: DnsQuestion, name: string, options: AnswerOptions): DnsOutcome {
  const labels = name === REVERSE_SUFFIX ? [] : name.slice(0, -REVERSE_SUFFIX.length - 1).split('.');
  const octets = labels.slice(-4);
  if (octets.length === 0 || !octets.every((o) => OCTET.test(o) && Number(o) <= 255)) return { kind: 'forward' };
  const prefix = octets.length * 8;
  const start = [...octets].reverse().reduce((acc, o) => acc * 256 + Number(o), 0) * 2 ** (32 - prefix);
  const range = { start, end: start + 2 ** (32 - prefix), prefix };
  const networks = view.networks.map(indexOf);
  const ours = networks.some((n) => n.subnet !== undefined && cidrContains(n.subnet, range));
  if (labels.length > 4) return ours ? nxdomain() : { kind: 'forward' };
  if (labels.length < 4) return ours ? empty() : { kind: 'forward' };
  const targets = ptrTargets(networks, [...octets].reverse().join('.'));
  if (targets.length === 0) return ours ? nxdomain() : { kind: 'forward' };
  const asked = question.name.endsWith('.') ? question.name.slice(0, -1) : question.name;
  const answers: Answer[] = question.type === 'PTR' || question.type === 'ANY' ? targets.map((data) => ({ type: 'PTR', name: asked, ttl: options.ttl, data })) : [];
  return { kind: 'answer', rcode: 'NOERROR', answers, additionals: [] };
}

function ptrTargets(networks: NetworkIndex[], ip: string): string[] {
  return networks.flatMap((n) => n.reverse.get(ip) ?? []);
}

function nxdomain(): DnsOutcome {
  return { kind: 'answer', rcode: 'NXDOMAIN', answers: [], additionals: [] };
}

function empty(): DnsOutcome {
  return { kind: 'answer', rcode: 'NOERROR', answers: [], additionals: [] };
}
