// What the embedded resolver answers, as a pure function of the asking
// sandbox's view (only the networks it is attached to) and the question.
// The rules and their reasons are in docs/dns.md:
//   <service>                VIP (vip mode) or the live task IPs (dnsrr)
//   tasks.<service>          the live task IPs, both modes
//   <a-b-c-d>.tasks.<service> one live task (the targets of per-task SRV records)
//   <endpoint name>, alias   the endpoint IPs
//   <any of those>.<network> the same, only in that network
//   SRV on <service>, tasks.<service>, _<proto>.<either>, _<port>._<proto>.<either>
//   PTR                      endpoint IPs and VIPs of the view's networks (dns-reverse.ts)
// The cluster's names (dns-names.ts) never go upstream: unknown ones are
// NXDOMAIN, and a name without records of the asked type is an empty NOERROR.
import type { Answer } from 'dns-packet';
import { indexOf, type Meaning } from './dns-index.ts';
import { inClusterDomain, normalise, srvName, taskLabel, type SrvName } from './dns-names.ts';
import { answerReverse, isReverseName } from './dns-reverse.ts';
import type { AnswerOptions, DnsClientView, DnsOutcome, DnsQuestion } from './dns-view.ts';

export type { AnswerOptions, DnsClientView, DnsEndpoint, DnsNetworkView, DnsOutcome, DnsPort, DnsQuestion, DnsService, DnsTask } from './dns-view.ts';

const FORWARD: DnsOutcome = { kind: 'forward' };

export function answerQuestion(view: DnsClientView, question: DnsQuestion, options: AnswerOptions): DnsOutcome {
  // The cluster's names exist in class IN only; CHAOS and friends are the upstream's.
  if (question.class !== undefined && question.class !== 'IN' && question.class !== 'ANY') return FORWARD;
  const name = normalise(question.name);
  if (isReverseName(name)) return answerReverse(view, question, name, options);
  const srv = srvName(name);
  let meanings = lookup(view, srv?.base ?? name);
  // SRV names exist under services only, and only for port numbers.
  if (srv) meanings = srv.unknownLabel ? [] : meanings.filter((m) => m.kind === 'service' || m.kind === 'tasks');
  if (meanings.length === 0) {
    const cluster = inClusterDomain(name, view.networks.map((n) => n.name));
    return cluster ? { kind: 'answer', rcode: 'NXDOMAIN', answers: [], additionals: [] } : FORWARD;
  }
  const asked = question.name.endsWith('.') ? question.name.slice(0, -1) : question.name;
  const wantA = question.type === 'A' || question.type === 'ANY';
  const wantSrv = question.type === 'SRV' || question.type === 'ANY';
  const answers: Answer[] = [];
  const additionals = new Map<string, Answer[]>();
  for (const meaning of meanings) {
    if (wantA && !srv) for (const ip of addresses(meaning)) answers.push({ type: 'A', name: asked, ttl: options.ttl, data: ip });
    if (wantSrv) answers.push(...srvRecords(meaning, asked, srv, options.ttl, additionals));
  }
  return { kind: 'answer', rcode: 'NOERROR', answers: shuffle(answers, options.random), additionals: [...additionals.values()].flat() };
}

/** The name's meanings in every attached network, plus `<name>.<network>` scoped to that network. */
function lookup(view: DnsClientView, name: string): Meaning[] {
  const out: Meaning[] = [];
  const dot = name.lastIndexOf('.');
  const scope = dot < 0 ? undefined : name.slice(dot + 1);
  const scoped = dot < 0 ? undefined : name.slice(0, dot);
  for (const network of view.networks) {
    const index = indexOf(network);
    const whole = index.names.get(name);
    if (whole) out.push(whole);
    if (scope === index.name) {
      const inNetwork = index.names.get(scoped!);
      if (inNetwork) out.push(inNetwork);
    }
  }
  return out;
}

function addresses(meaning: Meaning): string[] {
  switch (meaning.kind) {
    case 'endpoint':
      return meaning.ips;
    case 'task':
      return [meaning.ip];
    case 'service':
      if (meaning.service.mode === 'vip') return meaning.service.vip === '' ? [] : [meaning.service.vip];
      return meaning.service.backends.map((b) => b.ip);
    case 'tasks':
      return meaning.service.backends.map((b) => b.ip);
  }
}

/**
 * One record per matching port: a vip service's target is `<service>.<network>`
 * (through the load balancer); dnsrr services and `tasks.` names give one record
 * per live task and port, targeting `<a-b-c-d>.tasks.<service>.<network>`.
 * Each target's A record goes in the additional section.
 */
function srvRecords(meaning: Meaning, asked: string, srv: SrvName | undefined, ttl: number, additionals: Map<string, Answer[]>): Answer[] {
  if (meaning.kind !== 'service' && meaning.kind !== 'tasks') return [];
  const { service, network } = meaning;
  const ports = service.ports.filter((p) => srv === undefined || (p.protocol === srv.protocol && (srv.port === undefined || p.port === srv.port)));
  if (ports.length === 0) return [];
  const targets: { name: string; ip: string }[] = meaning.kind === 'service' && service.mode === 'vip'
    ? (service.vip === '' ? [] : [{ name: `${service.name}.${network}`, ip: service.vip }])
    : service.backends.map((b) => ({ name: `${taskLabel(b.ip)}.tasks.${service.name}.${network}`, ip: b.ip }));
  const out: Answer[] = [];
  for (const target of targets) {
    additionals.set(target.name.toLowerCase(), [{ type: 'A', name: target.name, ttl, data: target.ip }]);
    for (const port of ports) out.push({ type: 'SRV', name: asked, ttl, data: { priority: 0, weight: 10, port: port.port, target: target.name } });
  }
  return out;
}

/** Fisher-Yates with the caller's random source (deterministic in tests). */
function shuffle<T>(items: T[], random: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.min(i, Math.floor(random() * (i + 1)));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}
