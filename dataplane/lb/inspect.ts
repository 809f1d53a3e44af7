// What a sandbox's load-balancing table holds (from `nft -j list table`),
// compared with what it should hold, for `weft doctor`. Pure: the worker does
// the listing. Compared as sets (VIP:port → service, service → backends), so
// the order nft lists elements in does not matter.
import { z } from 'zod';
import { chainName, type LbPort, type LbService } from './ruleset.ts';

/** A table as sets: dispatch entries "vip proto port → chain", and each chain's backends ('reject' when it refuses). */
export interface LbTableState {
  conntrackMatch: boolean;
  dispatch: Set<string>;
  chains: Map<string, string>;
}

const listing = z.object({ nftables: z.array(z.record(z.string(), z.unknown())) });
const ruleSchema = z.object({ chain: z.string(), expr: z.array(z.record(z.string(), z.unknown())) });
const vmapElement = z.tuple([z.object({ concat: z.tuple([z.string(), z.string(), z.number()]) }), z.object({ jump: z.object({ target: z.string() }) })]);
const dnatSchema = z.object({
  addr: z.union([
    z.string(),
    z.object({ map: z.object({ key: z.object({ numgen: z.object({ mode: z.literal('random'), mod: z.number() }) }), data: z.object({ set: z.array(z.tuple([z.number(), z.string()])) }) }) }),
  ]),
});

/** A listing as nft holds it: dispatch entries in order, and per service chain what its rules send to. */
interface LbTableParts {
  conntrackMatch: boolean;
  dispatch: Array<{ vip: string; protocol: string; port: number; chain: string }>;
  /** Per chain (the output chain aside): the DNAT targets of its rules, and 'reject' for a reject rule. */
  chains: Map<string, string[]>;
}

function parseParts(json: string): LbTableParts {
  const parsed = listing.parse(JSON.parse(json));
  const parts: LbTableParts = { conntrackMatch: false, dispatch: [], chains: new Map() };
  for (const item of parsed.nftables) {
    if ('chain' in item) {
      const name = z.object({ name: z.string() }).parse(item.chain).name;
      if (name !== 'output') parts.chains.set(name, []);
    }
    if (!('rule' in item)) continue;
    const rule = ruleSchema.parse(item.rule);
    for (const expr of rule.expr) {
      if ('match' in expr && JSON.stringify(expr.match) === JSON.stringify({ op: 'in', left: { ct: { key: 'state' } }, right: 'new' })) parts.conntrackMatch = true;
      if ('vmap' in expr) {
        const set = z.object({ data: z.object({ set: z.array(vmapElement) }) }).parse(expr.vmap).data.set;
        for (const [key, verdict] of set) parts.dispatch.push({ vip: key.concat[0], protocol: key.concat[1], port: key.concat[2], chain: verdict.jump.target });
      }
      if ('dnat' in expr) {
        const addr = dnatSchema.parse(expr.dnat).addr;
        const ips = typeof addr === 'string' ? [addr] : addr.map.data.set.map(([, ip]) => ip);
        parts.chains.get(rule.chain)?.push(...ips);
      }
      if ('reject' in expr) parts.chains.get(rule.chain)?.push('reject');
    }
  }
  return parts;
}

export function parseLbListing(json: string): LbTableState {
  const parts = parseParts(json);
  const state: LbTableState = { conntrackMatch: parts.conntrackMatch, dispatch: new Set(), chains: new Map() };
  for (const d of parts.dispatch) state.dispatch.add(dispatchKey(d.vip, d.protocol, d.port, d.chain));
  for (const [name, entries] of parts.chains) state.chains.set(name, describeBackends(entries.filter((e) => e !== 'reject'), entries.includes('reject')));
  return state;
}

/**
 * The services a table balances, read back from its listing: each service
 * chain a dispatch entry jumps to, with that entry's VIP and ports and the
 * chain's DNAT targets. What a table held before this process wrote it (after
 * an agent restart) is known only to the kernel; the flows mapped by it are
 * judged against it. Entries of protocols weft does not write are skipped.
 */
export function heldServices(json: string): LbService[] {
  const parts = parseParts(json);
  const services = new Map<string, LbService & { ports: LbPort[] }>();
  for (const d of parts.dispatch) {
    if (d.protocol !== 'tcp' && d.protocol !== 'udp') continue;
    const key = `${d.chain} ${d.vip}`;
    const service = services.get(key) ?? { name: d.chain.replace(/^svc_/, ''), vip: d.vip, ports: [], backends: [...new Set((parts.chains.get(d.chain) ?? []).filter((e) => e !== 'reject'))] };
    service.ports.push({ port: d.port, protocol: d.protocol });
    services.set(key, service);
  }
  return [...services.values()];
}

export function desiredLbState(services: readonly LbService[]): LbTableState {
  const state: LbTableState = { conntrackMatch: true, dispatch: new Set(), chains: new Map() };
  for (const s of services) {
    if (s.ports.length === 0) continue;
    for (const p of s.ports) state.dispatch.add(dispatchKey(s.vip, p.protocol, p.port, chainName(s.name)));
    state.chains.set(chainName(s.name), describeBackends([...new Set(s.backends)], s.backends.length === 0));
  }
  return state;
}

/** The differences, each a sentence; empty when the table is as it should be. `actual` undefined: no table. */
export function compareLb(desired: LbTableState, actual: LbTableState | undefined): string[] {
  if (!actual) return desired.chains.size > 0 ? ['no load-balancing table (ip weft_lb), but this sandbox should balance service VIPs'] : [];
  if (desired.chains.size === 0) return ['a load-balancing table (ip weft_lb) that should not be there'];
  const problems: string[] = [];
  if (!actual.conntrackMatch) problems.push('the dispatch rule lacks its `ct state new` match');
  for (const entry of desired.dispatch) if (!actual.dispatch.has(entry)) problems.push(`missing dispatch ${entry}`);
  for (const entry of actual.dispatch) if (!desired.dispatch.has(entry)) problems.push(`unexpected dispatch ${entry}`);
  for (const [chain, backends] of desired.chains) {
    const held = actual.chains.get(chain);
    if (held === undefined) problems.push(`missing chain ${chain}`);
    else if (held !== backends) problems.push(`${chain} sends to ${held}, should send to ${backends}`);
  }
  for (const chain of actual.chains.keys()) if (!desired.chains.has(chain)) problems.push(`unexpected chain ${chain}`);
  return problems;
}

function dispatchKey(vip: string, protocol: string, port: number, chain: string): string {
  return `${vip}:${port}/${protocol} → ${chain}`;
}

function describeBackends(ips: string[], reject: boolean): string {
  if (ips.length === 0) return reject ? 'reject' : 'nothing';
  return [...ips].sort().join(', ') + (reject ? ' (and reject)' : '');
}
