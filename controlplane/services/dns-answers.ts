// What the embedded resolver answers, as a pure function of the asking
// sandbox's view (only the networks it is attached to) and the question.
// Rules (DESIGN.md §3, docs/dns.md):
//   <service>            VIP (vip mode) or the live task IPs (dnsrr)
//   tasks.<service>      the live task IPs, both modes
//   <endpoint name>      the endpoint's IP; aliases alike
//   <any of those>.<network>   the same, only in that network
//   SRV _<proto>.<service>, _<port>._<proto>.<service>, or <service>: one record per port
//   PTR                  endpoint IPs and VIPs of the view's networks
// The cluster's own names (one label, tasks.<label>, anything under a
// network's name, PTR inside a network's subnet) never go upstream: unknown
// ones are NXDOMAIN and a known name without records of the asked type is an
// empty NOERROR. Everything else is forwarded.
import type { Answer } from 'dns-packet';

export interface DnsPort { port: number; protocol: 'tcp' | 'udp' }
export interface DnsTask { ip: string; name: string }
export interface DnsService { name: string; mode: 'vip' | 'dnsrr'; vip: string; ports: readonly DnsPort[]; backends: readonly DnsTask[] }
export interface DnsEndpoint { name: string; aliases: readonly string[]; ip: string }
export interface DnsNetworkView { name: string; subnet: string; services: readonly DnsService[]; endpoints: readonly DnsEndpoint[] }
export interface DnsClientView { networks: readonly DnsNetworkView[] }

export interface DnsQuestion { name: string; type: string }
export interface AnswerOptions { ttl: number; random: () => number }

export type DnsOutcome =
  | { kind: 'answer'; rcode: 'NOERROR' | 'NXDOMAIN'; answers: Answer[]; additionals: Answer[] }
  | { kind: 'forward' };

const FORWARD: DnsOutcome = { kind: 'forward' };
const REVERSE_SUFFIX = '.in-addr.arpa';

/** What a name means in one network. */
type Meaning =
  | { kind: 'service'; service: DnsService; network: string }
  | { kind: 'tasks'; service: DnsService; network: string }
  | { kind: 'endpoint'; ips: string[]; network: string };

export function answerQuestion(view: DnsClientView, question: DnsQuestion, options: AnswerOptions): DnsOutcome {
  const asked = question.name.replace(/\.$/, '');
  const name = asked.toLowerCase();
  if (name.endsWith(REVERSE_SUFFIX)) return answerReverse(view, question, name, options);
  const srv = question.type === 'SRV' ? srvTarget(name) : undefined;
  const meanings = lookup(view, srv?.name ?? name);
  if (meanings.length === 0) return inClusterDomain(view, srv?.name ?? name) ? nx() : FORWARD;
  const answers: Answer[] = [];
  const additionals: Answer[] = [];
  for (const meaning of meanings) {
    if (question.type === 'A' || question.type === 'ANY') answers.push(...addresses(meaning).map((ip) => a(asked, ip, options.ttl)));
    if ((question.type === 'SRV' || question.type === 'ANY') && meaning.kind === 'service') {
      for (const port of meaning.service.ports.filter((p) => srv?.protocol === undefined || p.protocol === srv.protocol)) {
        if (srv?.port !== undefined && port.port !== srv.port) continue;
        const target = `${meaning.service.name}.${meaning.network}`;
        answers.push({ type: 'SRV', name: asked, ttl: options.ttl, data: { priority: 0, weight: 10, port: port.port, target: meaning.service.mode === 'vip' ? target : `tasks.${target}` } });
      }
      const targetName = `${meaning.service.mode === 'vip' ? '' : 'tasks.'}${meaning.service.name}.${meaning.network}`;
      additionals.push(...addresses(meaning).map((ip) => a(targetName, ip, options.ttl)));
    }
  }
  return { kind: 'answer', rcode: 'NOERROR', answers: shuffle(answers, options.random), additionals };
}

/** `_tcp.web`, `_80._tcp.web`, `web` (any port); the name is what follows. */
function srvTarget(name: string): { name: string; protocol?: 'tcp' | 'udp'; port?: number } {
  const labels = name.split('.');
  let port: number | undefined;
  if (/^_\d{1,5}$/.test(labels[0] ?? '')) port = Number(labels.shift()!.slice(1));
  const proto = labels[0];
  if (proto === '_tcp' || proto === '_udp') {
    labels.shift();
    return { name: labels.join('.'), protocol: proto === '_tcp' ? 'tcp' : 'udp', ...(port === undefined ? {} : { port }) };
  }
  return { name };
}

function lookup(view: DnsClientView, name: string): Meaning[] {
  const whole = view.networks.flatMap((n) => meaningIn(n, name));
  if (whole.length > 0) return whole;
  const dot = name.lastIndexOf('.');
  if (dot < 0) return [];
  const suffix = name.slice(dot + 1);
  return view.networks.filter((n) => n.name.toLowerCase() === suffix).flatMap((n) => meaningIn(n, name.slice(0, dot)));
}

function meaningIn(network: DnsNetworkView, name: string): Meaning[] {
  const service = network.services.find((s) => s.name.toLowerCase() === name);
  if (service) return [{ kind: 'service', service, network: network.name }];
  if (name.startsWith('tasks.')) {
    const target = network.services.find((s) => s.name.toLowerCase() === name.slice('tasks.'.length));
    if (target) return [{ kind: 'tasks', service: target, network: network.name }];
  }
  const ips = network.endpoints.filter((e) => e.name.toLowerCase() === name || e.aliases.some((alias) => alias.toLowerCase() === name)).map((e) => e.ip);
  return ips.length > 0 ? [{ kind: 'endpoint', ips, network: network.name }] : [];
}

function addresses(meaning: Meaning): string[] {
  if (meaning.kind === 'endpoint') return meaning.ips;
  if (meaning.kind === 'service' && meaning.service.mode === 'vip') return meaning.service.vip === '' ? [] : [meaning.service.vip];
  return meaning.service.backends.map((b) => b.ip);
}

function inClusterDomain(view: DnsClientView, name: string): boolean {
  const labels = name.split('.');
  if (labels.length === 1) return true;
  if (labels.length === 2 && labels[0] === 'tasks') return true;
  return view.networks.some((n) => n.name.toLowerCase() === labels[labels.length - 1]);
}

function answerReverse(view: DnsClientView, question: DnsQuestion, name: string, options: AnswerOptions): DnsOutcome {
  const octets = name.slice(0, -REVERSE_SUFFIX.length).split('.');
  if (octets.length !== 4 || !octets.every((o) => /^\d{1,3}$/.test(o) && Number(o) <= 255)) return FORWARD;
  const ip = octets.reverse().join('.');
  const asked = question.name.replace(/\.$/, '');
  const names: string[] = [];
  for (const network of view.networks) {
    for (const e of network.endpoints) if (e.ip === ip && e.name !== '') names.push(`${e.name}.${network.name}`);
    for (const s of network.services) if (s.vip === ip) names.push(`${s.name}.${network.name}`);
  }
  if (names.length > 0) {
    const answers: Answer[] = question.type === 'PTR' || question.type === 'ANY' ? names.map((data) => ({ type: 'PTR', name: asked, ttl: options.ttl, data })) : [];
    return { kind: 'answer', rcode: 'NOERROR', answers, additionals: [] };
  }
  // An overlay address nobody in the view has: never ask the outside world about it.
  return view.networks.some((n) => inSubnet(ip, n.subnet)) ? nx() : FORWARD;
}

function nx(): DnsOutcome {
  return { kind: 'answer', rcode: 'NXDOMAIN', answers: [], additionals: [] };
}

function a(name: string, ip: string, ttl: number): Answer {
  return { type: 'A', name, ttl, data: ip };
}

function toInt(ip: string): number {
  return ip.split('.').reduce((acc, o) => acc * 256 + Number(o), 0);
}

function inSubnet(ip: string, cidr: string): boolean {
  const [base, bits] = cidr.split('/');
  const prefix = Number(bits);
  if (base === undefined || !Number.isInteger(prefix) || prefix < 0 || prefix > 32) return false;
  const size = 2 ** (32 - prefix);
  const start = Math.floor(toInt(base) / size) * size;
  const value = toInt(ip);
  return value >= start && value < start + size;
}

/** Fisher-Yates with the caller's random source (deterministic in tests). */
function shuffle<T>(items: T[], random: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}
