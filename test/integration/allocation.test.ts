// The allocation service on three real agents in one process (loopback, real
// libp2p, gossip and /weft/alloc/1): concurrent allocation never collides,
// a taken value is refused everywhere, frees return space exactly (also when
// forwarded to the owner), a restarted service keeps its values, a leaving
// node hands its ranges over, and with the only owner gone allocation fails
// with the allocator's 'unreachable' error instead of guessing.
import { testInPrivateNetns } from '../helpers/private-netns-test.ts';
import { pino } from 'pino';
import { mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Agent } from '../../agent/daemon/agent.ts';
import { loopbackAgentConfig } from '../helpers/loopback-agents.ts';
import type { ClusterNode } from '../../agent/cluster/cluster-node.ts';
import { AllocationError, AllocationService, type AllocationCluster } from '../../agent/allocation/allocation-service.ts';
import { ALLOC_PROTOCOL } from '../../agent/allocation/alloc-rpc.ts';
import { FileAllocationStore } from '../../agent/allocation/store.ts';
import { ALLOCATIONS_TABLE, ringKey } from '../../agent/allocation/ring-keys.ts';
import { decodeRing } from '../../agent/wire/allocation-codec.ts';
import { eventually } from '../helpers/weft-cli.ts';

// Its agents run in this process: in a namespace of their own, never the machine's (see the helper).
const test = testInPrivateNetns(import.meta.url, 'wtal');

const logger = pino({ level: 'silent' });
const base = join(tmpdir(), `weft-alloc-${randomBytes(4).toString('hex')}`);
// Namespaces are machine-wide: a unique prefix keeps these agents away from everyone else's.
const nsPrefix = `wtal${randomBytes(3).toString('hex')}`;
const portBase = 20_000 + Math.floor(Math.random() * 30_000);
const DEADLINE_MS = 90_000;

interface Node {
  name: string;
  agent: Agent;
  cluster: ClusterNode;
  storeDir: string;
  service: AllocationService;
  /** Dials of /weft/alloc/1 made by this node's service: requests really go over libp2p. */
  dials: number;
}

const nodes: Node[] = [];
const services: AllocationService[] = [];

function byName(name: string): Node {
  const node = nodes.find((n) => n.name === name);
  if (!node) throw new Error(`no node ${name}`);
  return node;
}

async function startAgent(name: string, index: number): Promise<Agent> {
  return Agent.start(loopbackAgentConfig({ base, portBase, nsPrefix }, name, index), logger);
}

/** The service under test, on the agent's real ClusterNode, counting its RPC dials. */
async function startService(node: Node): Promise<AllocationService> {
  const cluster = node.cluster;
  const libp2p = cluster.libp2p;
  const counted: AllocationCluster = {
    nodeId: cluster.nodeId,
    tables: cluster.tables,
    reachable: () => cluster.reachable(),
    addressOf: (id) => cluster.addressOf(id),
    nodeIdOfPeer: (peer) => cluster.nodeIdOfPeer(peer),
    roster: cluster.roster,
    libp2p: {
      handle: libp2p.handle.bind(libp2p),
      unhandle: libp2p.unhandle.bind(libp2p),
      dialProtocol: ((...args: Parameters<typeof libp2p.dialProtocol>) => {
        if (args[1] === ALLOC_PROTOCOL) node.dials += 1;
        return libp2p.dialProtocol(...args);
      }) as typeof libp2p.dialProtocol,
    },
  };
  const service = await AllocationService.start({ cluster: counted, store: new FileAllocationStore(node.storeDir), logger });
  services.push(service);
  return service;
}

test.before(async () => {
  mkdirSync(base, { mode: 0o700 });
  const names = ['a', 'b', 'c'];
  const agents: Agent[] = [];
  for (const [i, name] of names.entries()) agents.push(await startAgent(name, i));
  const token = await agents[0]!.init('100.64.0.0/10');
  for (const agent of agents.slice(1)) await agent.join(token, '127.0.0.1', portBase);
  for (const [i, agent] of agents.entries()) {
    const cluster = agent.cluster!;
    await eventually(`${names[i]} to see all three nodes alive`, async () => cluster.reachable().length === 3, DEADLINE_MS);
    // The agent starts its own allocator on /weft/alloc/1 (agent/cluster/allocation-service.ts
    // until the lead wires this one in); the service under test takes the protocol over.
    if (cluster.libp2p.getProtocols().includes(ALLOC_PROTOCOL)) await cluster.libp2p.unhandle(ALLOC_PROTOCOL);
    const node = { name: names[i]!, agent, cluster, storeDir: join(base, `${names[i]}-alloc`), dials: 0 } as Node;
    node.service = await startService(node);
    nodes.push(node);
  }
});

test.after.always(async () => {
  for (const service of services) service.stop();
  for (const node of nodes) await node.agent.stop().catch(() => undefined);
  rmSync(base, { recursive: true, force: true });
});

/** Waits until every listed node has merged the ring `owner` published for `space`. */
async function ringKnown(space: string, owner: Node, on: Node[]): Promise<void> {
  for (const node of on) {
    await eventually(`${node.name} to receive ${owner.name}'s ${space} ring`, async () => node.cluster.tables.tables.get(ALLOCATIONS_TABLE, ringKey(space, owner.cluster.nodeId)) !== undefined, DEADLINE_MS);
  }
}

function defineEverywhere(space: string, start: number, end: number, creator: Node): void {
  creator.service.define({ name: space, start, end }, true);
  for (const node of nodes) if (node !== creator) node.service.define({ name: space, start, end }, false);
}

const held = new Map<string, number[]>(); // node name → values of t-conc it allocated

test.serial('three nodes allocating concurrently from a 300-value space never collide, and the joiners get space over /weft/alloc/1', async (t) => {
  const [a, b, c] = nodes as [Node, Node, Node];
  a.service.define({ name: 't-conc', start: 0, end: 300 }, true);
  await ringKnown('t-conc', a, [b, c]);
  b.service.define({ name: 't-conc', start: 0, end: 300 }, false);
  c.service.define({ name: 't-conc', start: 0, end: 300 }, false);
  t.is(b.service.stats('t-conc')?.owned, 0, 'a joiner owns nothing at first');

  const results = await Promise.all(
    nodes.map(async (node) => ({ node, values: await Promise.all(Array.from({ length: 100 }, () => node.service.allocate('t-conc'))) })),
  );
  const all = results.flatMap((r) => r.values);
  t.is(all.length, 300);
  t.is(new Set(all).size, 300, 'no value was handed out twice');
  t.true(all.every((v) => Number.isInteger(v) && v >= 0 && v < 300), 'every value lies in the space');
  for (const { node, values } of results) {
    held.set(node.name, values);
    t.is(node.service.stats('t-conc')?.allocated, 100, `${node.name} holds its 100 values`);
  }
  t.true(b.dials > 0 && c.dials > 0, `the joiners asked over ${ALLOC_PROTOCOL} (dials: b ${b.dials}, c ${c.dials})`);
  t.true((b.service.stats('t-conc')?.owned ?? 0) >= 100 && (c.service.stats('t-conc')?.owned ?? 0) >= 100, 'the joiners own the ranges they allocated from');
  const owned = nodes.reduce((sum, n) => sum + (n.service.stats('t-conc')?.owned ?? 0), 0);
  t.is(owned, 300, 'the nodes own the space exactly');

  const full = await t.throwsAsync(b.service.allocate('t-conc'), { instanceOf: AllocationError });
  t.is(full?.code, 'exhausted', full?.message);
  t.regex(full?.message ?? '', /t-conc space is full/);
});

test.serial('a user-requested value held by another node is refused everywhere with a clear error', async (t) => {
  const [a, b, c] = nodes as [Node, Node, Node];
  defineEverywhere('t-value', 1, 1000, a);
  await ringKnown('t-value', a, [b, c]);
  t.is(await b.service.allocateValue('t-value', 500), 500, 'a free value owned elsewhere is donated to the asker');
  for (const node of nodes) {
    const error = await t.throwsAsync(node.service.allocateValue('t-value', 500), { instanceOf: AllocationError });
    t.is(error?.code, 'in-use', `${node.name}: ${error?.message}`);
    t.regex(error?.message ?? '', /t-value value 500 is already in use.*choose another value/);
  }
  t.is(await c.service.allocateValue('t-value', 501), 501, 'its neighbour is still free');
  const outside = await t.throwsAsync(c.service.allocateValue('t-value', 1000), { instanceOf: AllocationError });
  t.is(outside?.code, 'out-of-space');
});

test.serial('a node that declares a space before its ring has arrived waits for the ring, then allocates', async (t) => {
  const [a, b] = nodes as [Node, Node, Node];
  a.service.define({ name: 't-late', start: 0, end: 10 }, true);
  // Same tick: gossip has not run yet, so b knows no ring for t-late.
  t.false(b.cluster.tables.tables.list(ALLOCATIONS_TABLE).some((e) => e.key.startsWith('t-late|')));
  b.service.define({ name: 't-late', start: 0, end: 10 }, false);
  const value = await b.service.allocate('t-late');
  t.true(value >= 0 && value < 10);
  t.is(b.service.stats('t-late')?.allocated, 1);
});

test.serial('freeing everything, partly through the owners, returns every node to its full free space', async (t) => {
  const [a, b, c] = nodes as [Node, Node, Node];
  const dialsBefore = a.dials + b.dials + c.dials;
  // Each node frees the values the next node allocated: those are owned by the next node, so the frees are forwarded.
  const pairs: Array<[Node, Node]> = [[a, b], [b, c], [c, a]];
  await Promise.all(pairs.map(([freer, holder]) => Promise.all(held.get(holder.name)!.map((v) => freer.service.free('t-conc', v)))));
  t.true(a.dials + b.dials + c.dials > dialsBefore, 'the frees went to the owners over the RPC');
  let owned = 0;
  for (const node of nodes) {
    const stats = node.service.stats('t-conc')!;
    t.is(stats.allocated, 0, `${node.name} holds nothing`);
    t.is(stats.free, stats.owned, `${node.name}'s free count is its whole owned space`);
    owned += stats.owned;
  }
  t.is(owned, 300);
  // The published rings agree: on every node, the free counts its peers publish add up to the full space.
  for (const node of nodes) {
    await eventually(`${node.name} to see the full t-conc space free in the published rings`, async () => {
      let free = 0;
      for (const owner of nodes) {
        const entry = node.cluster.tables.tables.get(ALLOCATIONS_TABLE, ringKey('t-conc', owner.cluster.nodeId));
        if (!entry) return false;
        free += decodeRing(entry.value).tokens.filter((tk) => tk.owner === owner.cluster.nodeId).reduce((s, tk) => s + tk.free, 0);
      }
      return free === 300;
    }, DEADLINE_MS);
  }
  const again = await t.throwsAsync(a.service.free('t-conc', held.get('a')![0]!), { instanceOf: AllocationError });
  t.is(again?.code, 'not-allocated', again?.message);
  t.is(await b.service.allocate('t-conc').then((v) => typeof v), 'number', 'the space is usable again');
});

test.serial('a restarted service keeps its allocations from its store and never hands them out again', async (t) => {
  const [a, b, c] = nodes as [Node, Node, Node];
  defineEverywhere('t-restart', 0, 120, a);
  await ringKnown('t-restart', a, [b, c]);
  const first: number[] = [];
  for (let i = 0; i < 30; i++) first.push(await b.service.allocate('t-restart'));
  const before = b.service.stats('t-restart')!;

  b.service.stop();
  const restarted = await startService(b);
  b.service = restarted;
  t.deepEqual(restarted.stats('t-restart'), before, 'owned ranges and values came back from the store');
  restarted.define({ name: 't-restart', start: 0, end: 120 }, false); // what the overlay does at start: a no-op now
  for (const v of first) {
    const error = await t.throwsAsync(restarted.allocateValue('t-restart', v), { instanceOf: AllocationError });
    t.is(error?.code, 'in-use', `value ${v} is still held after the restart`);
  }
  const [fromB, fromA, fromC] = await Promise.all([b, a, c].map((n) => Promise.all(Array.from({ length: 30 }, () => n.service.allocate('t-restart')))));
  const all = [...first, ...fromB!, ...fromA!, ...fromC!];
  t.is(new Set(all).size, all.length, 'no duplicates across the restart');
  t.is(restarted.stats('t-restart')?.allocated, 60);
});

test.serial('a leaving node hands its ranges and the values in use to a member', async (t) => {
  const b = byName('b');
  const others = nodes.filter((n) => n !== b);
  defineEverywhere('t-leave', 0, 50, b);
  await ringKnown('t-leave', b, others);
  const inUse = await Promise.all(Array.from({ length: 10 }, () => b.service.allocate('t-leave')));
  // b owns ranges of earlier spaces too; all go to one member.
  const report = await b.service.leave();
  t.deepEqual(report.kept, [], 'no space was left behind');
  const handover = report.handedOver.find((h) => h.space === 't-leave');
  t.truthy(handover, JSON.stringify(report));
  t.true(handover!.confirmed);
  const receiver = others.find((n) => n.cluster.nodeId === handover!.to)!;
  t.truthy(receiver);
  t.like(receiver.service.stats('t-leave'), { owned: 50, allocated: 10, free: 40 });
  for (const v of inUse) {
    const error = await t.throwsAsync(receiver.service.allocateValue('t-leave', v), { instanceOf: AllocationError });
    t.is(error?.code, 'in-use');
  }
  const error = await t.throwsAsync(b.service.allocate('t-leave'), { instanceOf: AllocationError });
  t.is(error?.code, 'left');
  const rest = await Promise.all(others.map((n) => Promise.all(Array.from({ length: 20 }, () => n.service.allocate('t-leave')))));
  t.is(new Set([...inUse, ...rest.flat()]).size, 50, 'the other 40 values are handed out once each, after the handover');
});

test.serial('honest nodes never report a ring conflict', (t) => {
  for (const node of nodes) t.deepEqual(node.service.conflicts(), [], node.name);
});

test.serial('with the only owner of a space stopped, allocation fails with the unreachable error instead of guessing', async (t) => {
  const [a, , c] = nodes as [Node, Node, Node];
  c.service.define({ name: 't-solo', start: 0, end: 50 }, true);
  await ringKnown('t-solo', c, [a]);
  a.service.define({ name: 't-solo', start: 0, end: 50 }, false);
  t.is(a.service.stats('t-solo')?.owned, 0);

  c.service.stop();
  await c.agent.stop();
  await eventually('a to stop counting c as reachable', async () => !a.cluster.reachable().includes(c.cluster.nodeId), DEADLINE_MS);

  const error = await t.throwsAsync(a.service.allocate('t-solo'), { instanceOf: AllocationError });
  t.is(error?.code, 'unreachable', error?.message);
  t.regex(error?.message ?? '', /no free t-solo space owned by this node and no reachable owner to ask.*retry when the cluster is healed/);
  t.deepEqual(error?.owners, [c.cluster.nodeId]);
  const value = await t.throwsAsync(a.service.allocateValue('t-solo', 7), { instanceOf: AllocationError });
  t.is(value?.code, 'unreachable');
  t.regex(value?.message ?? '', new RegExp(`belongs to node ${c.cluster.nodeId}, which is not reachable`));
});
