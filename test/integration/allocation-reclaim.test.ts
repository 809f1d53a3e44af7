// Reclaiming a removed node's allocation ranges on four real agents in one
// process (loopback, real libp2p, gossip and /weft/alloc/1, each agent's own
// allocation service): after `weft node rm` of a dead host, its ranges come
// back to the pool (the values its workloads held are free again, the VNI of
// a network it created stays reserved), nothing is reclaimed while an active
// member does not answer, and `weft doctor` shows an allocator conflict.
import { testInPrivateNetns } from '../helpers/private-netns-test.ts';
import { pino } from 'pino';
import { mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Agent } from '../../agent/daemon/agent.ts';
import type { AgentConfig } from '../../agent/config.ts';
import { loopbackAgentConfig } from '../helpers/loopback-agents.ts';
import { AllocationError, type AllocationService } from '../../agent/allocation/allocation-service.ts';
import { ALLOCATIONS_TABLE, ringKey } from '../../agent/allocation/ring-keys.ts';
import { encodeRing } from '../../agent/wire/allocation-codec.ts';
import { eventually } from '../helpers/weft-cli.ts';

// Its agents run in this process: in a namespace of their own, never the machine's (see the helper).
const test = testInPrivateNetns(import.meta.url, 'wtrc');

const logger = pino({ level: 'silent' });
const base = join(tmpdir(), `weft-reclaim-${randomBytes(4).toString('hex')}`);
const nsPrefix = `wtrc${randomBytes(3).toString('hex')}`;
const portBase = 20_000 + Math.floor(Math.random() * 30_000);
const DEADLINE_MS = 90_000;

interface Node {
  name: string;
  config: AgentConfig;
  agent: Agent;
}

const nodes: Node[] = [];
const running = new Set<Agent>();

const configOf = (name: string, index: number): AgentConfig => loopbackAgentConfig({ base, portBase, nsPrefix }, name, index);

async function startAgent(config: AgentConfig): Promise<Agent> {
  const agent = await Agent.start(config, logger);
  running.add(agent);
  return agent;
}

async function stopAgent(node: Node): Promise<void> {
  await node.agent.stop();
  running.delete(node.agent);
}

function byName(name: string): Node {
  const node = nodes.find((n) => n.name === name);
  if (!node) throw new Error(`no node ${name}`);
  return node;
}

const idOf = (node: Node): string => node.agent.cluster!.nodeId;
const allocs = (node: Node): AllocationService => node.agent.allocations!;

test.before(async () => {
  mkdirSync(base, { mode: 0o700 });
  const names = ['a', 'b', 'c', 'd'];
  for (const [i, name] of names.entries()) {
    const config = configOf(name, i);
    nodes.push({ name, config, agent: await startAgent(config) });
  }
  const token = await nodes[0]!.agent.init('100.64.0.0/10');
  for (const node of nodes.slice(1)) await node.agent.join(token, '127.0.0.1', portBase);
  for (const node of nodes) {
    await eventually(`${node.name} to see all four nodes alive`, async () => node.agent.cluster!.reachable().length === 4, DEADLINE_MS);
  }
});

test.after.always(async () => {
  for (const agent of running) await agent.stop().catch(() => undefined);
  rmSync(base, { recursive: true, force: true });
});

/** Defines a space owned by `creator` and joined by the others once its ring reached them. */
async function defineEverywhere(space: string, start: number, end: number, creator: Node, on: Node[]): Promise<void> {
  allocs(creator).define({ name: space, start, end }, true);
  for (const node of on) {
    if (node === creator) continue;
    await eventually(`${node.name} to receive ${creator.name}'s ${space} ring`, async () => node.agent.cluster!.tables.tables.get(ALLOCATIONS_TABLE, ringKey(space, idOf(creator))) !== undefined, DEADLINE_MS);
    allocs(node).define({ name: space, start, end }, false);
  }
}

function ownedBy(node: Node, space: string, owner: string): number {
  const ring = allocs(node).ring(space);
  if (!ring) return 0;
  return ring.tokens.reduce((sum, token, i) => sum + (token.owner === owner ? (ring.tokens[i + 1]?.start ?? ring.end) - token.start : 0), 0);
}

test.serial('after `node rm` of a dead host its ranges come back: its workloads’ values are free again, its network’s VNI stays reserved', async (t) => {
  const [a, b, c, d] = nodes as [Node, Node, Node, Node];
  const survivors = [a, b, d];
  await defineEverywhere('t-rm', 0, 40, c, nodes);
  // c's workloads hold 30 values; a asks c for space and holds 5.
  const onC = await Promise.all(Array.from({ length: 30 }, () => allocs(c).allocate('t-rm')));
  const onA = await Promise.all(Array.from({ length: 5 }, () => allocs(a).allocate('t-rm')));
  t.is(new Set([...onC, ...onA]).size, 35);
  // A cluster object c created: its VNI lies in a range c owns, and must survive c.
  const network = await c.agent.overlay().createNetwork({ name: 'made-on-c', internal: false });
  t.is(allocs(c).ring('vni')!.tokens.find((tk, i, all) => tk.start <= network.vni && network.vni < (all[i + 1]?.start ?? 16_777_216))?.owner, idOf(c), 'the VNI came from a range c owns');
  for (const node of survivors) {
    await eventually(`${node.name} to see the network`, async () => node.agent.overlay().networks.byName('made-on-c') !== undefined, DEADLINE_MS);
  }
  const cId = idOf(c);

  await stopAgent(c); // the host dies
  await a.agent.removeNode(cId);

  for (const node of survivors) {
    await eventually(`${node.name} to see c's t-rm ranges reclaimed`, async () => ownedBy(node, 't-rm', cId) === 0 && ownedBy(node, 'vni', cId) === 0, DEADLINE_MS);
  }
  const owned = survivors.reduce((sum, n) => sum + (allocs(n).stats('t-rm')?.owned ?? 0), 0);
  const free = survivors.reduce((sum, n) => sum + (allocs(n).stats('t-rm')?.free ?? 0), 0);
  t.is(owned, 40, 'the survivors own the whole space');
  t.is(free, 35, "c's 30 values are free again; a's 5 are still held");

  // One at a time: concurrent askers in a nearly full space may be refused, which is not what this test is about.
  const again: number[] = [];
  for (const node of [...survivors, b, b]) for (let i = 0; i < 7; i++) again.push(await allocs(node).allocate('t-rm'));
  const all = [...onA, ...again];
  t.is(new Set(all).size, 40, 'every value of the space is handed out once, the reclaimed ones included');
  t.true(onC.every((v) => all.includes(v)), 'the values c held are allocatable again');
  const full = await t.throwsAsync(allocs(d).allocate('t-rm'), { instanceOf: AllocationError });
  t.is(full?.code, 'exhausted', full?.message);

  const vni = await t.throwsAsync(allocs(b).allocateValue('vni', network.vni), { instanceOf: AllocationError });
  t.is(vni?.code, 'in-use', `the network's VNI stays reserved after the reclaim: ${vni?.message}`);
  for (const node of survivors) t.deepEqual(allocs(node).conflicts(), [], `${node.name} saw no conflict`);
});

test.serial('nothing is reclaimed while an active member does not answer; once it is back, the ranges return', async (t) => {
  const [a, b, , d] = nodes as [Node, Node, Node, Node];
  await defineEverywhere('t-wait', 0, 20, d, [a, b, d]);
  await Promise.all(Array.from({ length: 6 }, () => allocs(d).allocate('t-wait')));
  const dId = idOf(d);
  const aId = idOf(a);
  const bId = idOf(b);
  // b is down but still a member: it might hold a range d gave it.
  await stopAgent(b);
  await stopAgent(d);
  await a.agent.removeNode(dId);
  for (let i = 0; i < 3; i++) await allocs(a).reclaim();
  await new Promise((resolve) => setTimeout(resolve, 3 * 2_000)); // a few reclaim periods
  t.is(ownedBy(a, 't-wait', dId), 20, 'd still owns its ranges: b has not answered');
  const waiting = allocs(a).blockedReclaim();
  if (aId < bId) t.truthy(waiting, 'the reclaimer says what it waits for');
  else t.is(waiting, undefined, 'a is not the reclaimer');

  b.agent = await startAgent(b.config);
  await eventually('the ranges of d to be reclaimed once b is back', async () => ownedBy(a, 't-wait', dId) === 0, DEADLINE_MS);
  const values: number[] = [];
  for (let i = 0; i < 20; i++) values.push(await allocs(a).allocate('t-wait'));
  t.is(new Set(values).size, 20, "d's values are free again and handed out once each");
});

test.serial('`weft doctor` shows an allocator conflict', async (t) => {
  const a = byName('a');
  const b = byName('b');
  await eventually('b to see a alive', async () => b.agent.cluster!.reachable().includes(idOf(a)), DEADLINE_MS);
  allocs(a).define({ name: 't-conf', start: 0, end: 10 }, true);
  // b publishes a ring that also claims the first token at version 1: two nodes initialised one space.
  b.agent.cluster!.tables.set(ALLOCATIONS_TABLE, ringKey('t-conf', idOf(b)), encodeRing({ space: 't-conf', start: 0, end: 10, tokens: [{ start: 0, owner: idOf(b), version: 1, free: 10 }] }));
  const finding = await eventually('a conflict in a’s doctor findings', async () => (await a.agent.overlay().doctor()).find((f) => f.subject === 'allocation space t-conf'), DEADLINE_MS);
  t.regex(finding.problem, new RegExp(`refused a conflicting ring from node ${idOf(b)}`));
  t.regex(finding.problem, /two nodes wrote the same token/);
  t.regex(finding.hint, /weft node rm/);
});
