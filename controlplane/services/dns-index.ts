// A name index of one network's view, built once per view object (the agent
// keeps a view until the tables change) so a query is a map lookup, not a scan
// of every service and endpoint. Memoised by object identity: still a pure
// function of its input.
import { parseCidr, parseIPv4, type Cidr } from '../../lib/ipv4.ts';
import type { DnsNetworkView, DnsService } from './dns-view.ts';
import { taskLabel } from './dns-names.ts';

/** What a name means in one network. */
export type Meaning =
  | { kind: 'service'; service: DnsService; network: string }
  | { kind: 'tasks'; service: DnsService; network: string }
  | { kind: 'task'; service: DnsService; ip: string; network: string }
  | { kind: 'endpoint'; ips: string[]; network: string };

export interface NetworkIndex {
  /** Lowercased network name. */
  name: string;
  names: Map<string, Meaning>;
  /** IP -> PTR targets (`<endpoint>.<network>`, `<service>.<network>`). */
  reverse: Map<string, string[]>;
  subnet: Cidr | undefined;
}

const memo = new WeakMap<DnsNetworkView, NetworkIndex>();

export function indexOf(network: DnsNetworkView): NetworkIndex {
  let index = memo.get(network);
  if (!index) {
    index = build(network);
    memo.set(network, index);
  }
  return index;
}

function build(network: DnsNetworkView): NetworkIndex {
  const names = new Map<string, Meaning>();
  const reverse = new Map<string, string[]>();
  const addReverse = (ip: string, target: string): void => {
    const list = reverse.get(ip);
    if (list) {
      if (!list.includes(target)) list.push(target);
    } else reverse.set(ip, [target]);
  };
  // Endpoints first, so that a service of the same name wins (its VIP is what clients want).
  for (const e of network.endpoints) {
    for (const raw of [e.name, ...e.aliases]) {
      const name = raw.toLowerCase();
      if (name === '') continue;
      const meaning = names.get(name);
      if (meaning?.kind === 'endpoint') {
        if (!meaning.ips.includes(e.ip)) meaning.ips.push(e.ip);
      } else names.set(name, { kind: 'endpoint', ips: [e.ip], network: network.name });
    }
    if (e.name !== '') addReverse(e.ip, `${e.name}.${network.name}`);
  }
  for (const service of network.services) {
    const name = service.name.toLowerCase();
    names.set(name, { kind: 'service', service, network: network.name });
    names.set(`tasks.${name}`, { kind: 'tasks', service, network: network.name });
    for (const b of service.backends) names.set(`${taskLabel(b.ip)}.tasks.${name}`, { kind: 'task', service, ip: b.ip, network: network.name });
    if (service.mode === 'vip' && service.vip !== '') addReverse(service.vip, `${service.name}.${network.name}`);
  }
  return { name: network.name.toLowerCase(), names, reverse, subnet: cidrOrUndefined(network.subnet) };
}

function cidrOrUndefined(text: string): Cidr | undefined {
  try {
    return parseCidr(text);
  } catch {
    return undefined;
  }
}

export function ipOrUndefined(text: string): number | undefined {
  try {
    return parseIPv4(text);
  } catch {
    return undefined;
  }
}
