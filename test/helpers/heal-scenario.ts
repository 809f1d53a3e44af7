// A partition and its healing on a lab, as the e2e test and the benchmark
// run it: one network, a VIP service with a backend sandbox on every host,
// the healthy cluster's view of it as the truth; then one host's underlay link
// is cut for a while and restored, and the time is measured from the moment
// the link is back until every host shows the truth again exactly.
import { memberStateChanges, type MemberStateChange } from './member-log.ts';
import { callAgent, setUnderlayLink, type LabHost, type LabState } from '../../deploy/lab/lab.ts';
import { readViews, sameView, viewDifferences, type HostView, type ViewTarget } from './lab-truth.ts';

export const HEAL_SERVICE = 'web';
const NETWORK = 'heal';
const POLL_MS = 100;

export interface HealSetup {
  targets: ViewTarget[];
  truth: HostView[];
}

interface SandboxInfo { netns: string; endpoints: Array<{ ip: string }> }

/** Network, service and one backend per host; returns once every host agrees on all of them, twice in a row. */
export async function setUpHealScenario(lab: LabState, timeoutMs = 60_000): Promise<HealSetup> {
  const [first] = lab.hosts as [LabHost];
  const network = await callAgent<{ vni: number }>(first, 'NetworkCreate', { name: NETWORK, subnet: '', vni: 0, internal: false });
  await callAgent(first, 'ServiceCreate', { name: HEAL_SERVICE, network: NETWORK, ports: [{ port: 80, protocol: 'tcp' }], mode: 'vip', health: '' });
  const targets: ViewTarget[] = [];
  const backendIps: string[] = [];
  for (const host of lab.hosts) {
    const sandbox = await callAgent<SandboxInfo>(host, 'SandboxCreate', {
      networks: [NETWORK], name: `${HEAL_SERVICE}-${host.name}`, aliases: [], netns: '', services: [HEAL_SERVICE], command: ['sleep', '100000'],
    });
    backendIps.push(sandbox.endpoints[0]!.ip);
    targets.push({ host, networkNs: `${host.netns}-n${network.vni}`, sandboxNs: sandbox.netns });
  }
  const remote = lab.hosts.length - 1;
  const complete = (v: HostView): boolean =>
    v.dns.length === lab.hosts.length && backendIps.every((ip) => v.dns.includes(ip) && v.lb.includes(ip)) && v.neighbours.length === remote && v.fdb.length >= remote;
  const deadline = Date.now() + timeoutMs;
  let previous: HostView[] | undefined;
  while (Date.now() < deadline) {
    const views = await readViews(targets, HEAL_SERVICE);
    if (views.every(complete) && previous && views.every((v, i) => sameView(v, previous![i]!))) return { targets, truth: views };
    previous = views;
    await sleep(1_000);
  }
  const seen = (previous ?? []).map((v, i) => `${lab.hosts[i]!.name}: dns ${v.dns.length} lb ${v.lb.length} neighbours ${v.neighbours.length} fdb ${v.fdb.length}`);
  throw new Error(`the lab did not converge on ${lab.hosts.length} backends within ${timeoutMs / 1000} s (last seen ${seen.join('; ')})`);
}

export interface HealTrial {
  victim: string;
  partitionMs: number;
  /** Whether any host's view left the truth while the link was down (a 5 s cut may heal before the others notice). */
  diverged: boolean;
  /** Link back → every host shows the truth exactly; undefined if not within the timeout. */
  healMs: number | undefined;
  /** What still differed when the timeout struck (host: parts). */
  stillDifferent: string[];
  /** Link back → the victim alive again on every other host (from their logs). */
  aliveEverywhereMs: number | undefined;
  /** Link back → the victim sees every other host alive again (from its log). */
  victimSeesAllMs: number | undefined;
}

/** Cuts one host off for `partitionMs`, restores the link and waits until every host shows `truth` again. */
export async function partitionAndHeal(lab: LabState, setup: HealSetup, victim: LabHost, partitionMs: number, timeoutMs: number): Promise<HealTrial> {
  const ids = await nodeIds(lab);
  await setUnderlayLink(lab.prefix, victim.name, false);
  let diverged = false;
  const cutUntil = Date.now() + partitionMs;
  while (Date.now() < cutUntil) {
    if (!diverged) {
      const views = await readViews(setup.targets, HEAL_SERVICE);
      diverged = views.some((v, i) => !sameView(v, setup.truth[i]!));
    }
    await sleep(Math.min(500, Math.max(0, cutUntil - Date.now())));
  }
  await setUnderlayLink(lab.prefix, victim.name, true);
  const linkUpAt = Date.now();
  let healMs: number | undefined;
  let last: HostView[] = [];
  while (Date.now() - linkUpAt < timeoutMs) {
    const polledAt = Date.now();
    last = await readViews(setup.targets, HEAL_SERVICE);
    // The view read is the state at (about) the start of the read.
    if (last.every((v, i) => sameView(v, setup.truth[i]!))) {
      healMs = polledAt - linkUpAt;
      break;
    }
    await sleep(POLL_MS);
  }
  const stillDifferent = healMs === undefined
    ? last.flatMap((v, i) => { const d = viewDifferences(setup.truth[i]!, v); return d.length ? [`${lab.hosts[i]!.name}: ${d.join(',')}`] : []; })
    : [];
  const others = lab.hosts.filter((h) => h !== victim);
  const aliveAt = others.map((h) => firstAliveAfter(h, ids.get(victim.name)!, linkUpAt));
  const victimSees = others.map((h) => firstAliveAfter(victim, ids.get(h.name)!, linkUpAt, true));
  return {
    victim: victim.name, partitionMs, diverged, healMs, stillDifferent,
    aliveEverywhereMs: latest(aliveAt, linkUpAt),
    victimSeesAllMs: latest(victimSees, linkUpAt),
  };
}

async function nodeIds(lab: LabState): Promise<Map<string, string>> {
  const reply = await callAgent<{ members: Array<{ name: string; nodeId: string }> }>(lab.hosts[0]!, 'Members');
  return new Map(reply.members.map((m) => [m.name, m.nodeId]));
}

/**
 * When `observer` logged `node` turning alive after `since`. With
 * `orAlready`, a node the observer never stopped holding alive counts as
 * alive at `since` (the victim may heal before it suspects anyone).
 */
function firstAliveAfter(observer: LabHost, node: string, since: number, orAlready = false): number | undefined {
  let lastChange: MemberStateChange | undefined;
  for (const change of memberStateChanges(observer.logFile).filter((c) => c.node === node)) {
    if (change.time > since && change.state === 'alive') return change.time;
    if (change.time <= since) lastChange = change;
  }
  return orAlready && (lastChange === undefined || lastChange.state === 'alive') ? since : undefined;
}

function latest(times: Array<number | undefined>, since: number): number | undefined {
  if (times.some((t) => t === undefined)) return undefined;
  return Math.max(...(times as number[])) - since;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
