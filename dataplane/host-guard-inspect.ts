// What the host guard tables hold (from `nft -j list table`), compared with
// what they should hold, for `weft doctor` and the periodic check. Pure: the
// caller does the listing. Set elements are compared as sets; rules by the
// verdicts of each chain in order, which catches a rule removed, added or
// turned from drop into accept (not a changed match: the check reads back
// what matters most and stays cheap).
import { z } from 'zod';
import type { GuardMembers, GuardPin } from './host-guard-state.ts';
import { normalizeMac } from './mac.ts';

export interface GuardTableState {
  sets: Map<string, Set<string>>;
  /** Per chain: hook (or '' for a regular chain), then each rule's verdict. */
  chains: Map<string, string>;
}

const listing = z.object({ nftables: z.array(z.record(z.string(), z.unknown())) });
const setSchema = z.object({ name: z.string(), elem: z.array(z.unknown()).optional() });
const chainSchema = z.object({ name: z.string(), hook: z.string().optional(), policy: z.string().optional() });
const ruleSchema = z.object({ chain: z.string(), expr: z.array(z.record(z.string(), z.unknown())) });
const VERDICTS = ['accept', 'drop', 'jump', 'goto', 'return', 'continue', 'reject', 'queue'];

function elementText(element: unknown): string {
  if (typeof element === 'string' || typeof element === 'number') return String(element);
  const concat = z.object({ concat: z.array(z.union([z.string(), z.number()])) }).safeParse(element);
  if (concat.success) return concat.data.concat.map(String).join(' ');
  return JSON.stringify(element); // anything else (a range, an element with a timeout) is not what we write
}

function verdictOf(expr: Record<string, unknown>): string | undefined {
  const key = Object.keys(expr).find((k) => VERDICTS.includes(k));
  if (key === undefined) return undefined;
  const target = z.object({ target: z.string() }).safeParse(expr[key]);
  return target.success ? `${key} ${target.data.target}` : key;
}

export function parseGuardListing(json: string): GuardTableState {
  const parsed = listing.parse(JSON.parse(json));
  const state: GuardTableState = { sets: new Map(), chains: new Map() };
  const rules = new Map<string, string[]>();
  for (const item of parsed.nftables) {
    if ('set' in item) {
      const set = setSchema.parse(item.set);
      state.sets.set(set.name, new Set((set.elem ?? []).map(elementText)));
    }
    if ('chain' in item) {
      const chain = chainSchema.parse(item.chain);
      rules.set(chain.name, [chain.hook ? `${chain.hook}/${chain.policy ?? 'accept'}` : '']);
    }
    if ('rule' in item) {
      const rule = ruleSchema.parse(item.rule);
      rules.get(rule.chain)?.push(rule.expr.map(verdictOf).find((v) => v !== undefined) ?? 'continue');
    }
  }
  for (const [name, parts] of rules) state.chains.set(name, parts.join(', '));
  return state;
}

/** The state the rendered ip table has once applied. */
export function desiredGuardIp(members: GuardMembers): GuardTableState {
  return {
    sets: new Map([
      ['vteps', new Set(members.vteps)],
      ['cluster_ports', new Set(members.clusterPorts.map((p) => `${p.address} ${p.protocol} ${p.port}`))],
    ]),
    chains: new Map([
      ['input', 'input/accept, drop, drop, drop'],
      ['forward', 'forward/accept, drop, accept, jump published, drop'],
      ['published', ', accept'],
    ]),
  };
}

/** The state the rendered bridge table has once applied. */
export function desiredGuardBridge(pins: readonly GuardPin[]): GuardTableState {
  return {
    sets: new Map([['pins', new Set(pins.map((p) => `${p.port} ${normalizeMac(p.mac)} ${p.ip}`))]]),
    chains: new Map([['prerouting', 'prerouting/accept, accept, accept, accept, drop']]),
  };
}

const SET_MEANING: Record<string, string> = {
  vteps: 'VXLAN source',
  cluster_ports: 'cluster port closed to sandboxes',
  pins: 'sandbox port pin',
};

/** The differences, each a sentence; empty when the table is as it should be. `actual` undefined: no table. */
export function compareGuard(table: string, desired: GuardTableState, actual: GuardTableState | undefined): string[] {
  if (!actual) return [`table ${table} is missing`];
  const problems: string[] = [];
  for (const [name, want] of desired.sets) {
    const held = actual.sets.get(name);
    if (!held) {
      problems.push(`${table}: set ${name} is missing`);
      continue;
    }
    const meaning = SET_MEANING[name] ?? name;
    for (const element of want) if (!held.has(element)) problems.push(`${table}: ${meaning} ${element} is missing from set ${name}`);
    for (const element of held) if (!want.has(element)) problems.push(`${table}: unexpected ${meaning} ${element} in set ${name}`);
  }
  for (const [name, want] of desired.chains) {
    const held = actual.chains.get(name);
    if (held === undefined) problems.push(`${table}: chain ${name} is missing`);
    else if (held !== want) problems.push(`${table}: chain ${name} is "${held}", should be "${want}"`);
  }
  for (const name of actual.chains.keys()) if (!desired.chains.has(name)) problems.push(`${table}: unexpected chain ${name}`);
  return problems;
}
