// The host's upstream resolvers, from resolv.conf text. Hostile input: only
// well-formed `nameserver <IPv4>` lines count; anything else is ignored. The
// first three, as glibc (MAXNS) uses them: a resolv.conf listing a hundred
// dead servers must not cost a hundred timeouts per query.
import { isIPv4 } from 'node:net';

const MAXNS = 3;

export function readUpstreams(resolvConf: string, exclude: readonly string[] = []): string[] {
  const out: string[] = [];
  for (const line of resolvConf.split(/\r?\n/)) {
    if (out.length === MAXNS) break;
    const match = /^\s*nameserver\s+(\S+)\s*(?:[#;].*)?$/.exec(line);
    const address = match?.[1];
    if (address && isIPv4(address) && !exclude.includes(address) && !out.includes(address)) out.push(address);
  }
  return out;
}
