// The host's upstream resolvers, from resolv.conf text. Hostile input: only
// well-formed `nameserver <IPv4>` lines count; anything else is ignored.
import { isIPv4 } from 'node:net';

export function readUpstreams(resolvConf: string, exclude: readonly string[] = []): string[] {
  const out: string[] = [];
  for (const line of resolvConf.split('\n')) {
    const match = /^\s*nameserver\s+(\S+)\s*(?:[#;].*)?$/.exec(line);
    const address = match?.[1];
    if (address && isIPv4(address) && !exclude.includes(address) && !out.includes(address)) out.push(address);
  }
  return out;
}
