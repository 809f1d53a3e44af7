// The gossipsub model (controlplane/sim/dissemination-gossipsub.ts) and the
// convergence measurement built on it. The model stands in for libp2p
// gossipsub in the simulator, so its mechanics are checked here directly.
import test from 'ava';
import { TablesCluster } from '../../controlplane/sim/tables-cluster.ts';
import { runConvergence } from '../../controlplane/sim/tables-convergence.ts';
import { GOSSIPSUB_DEFAULTS } from '../../controlplane/sim/dissemination-gossipsub.ts';
import { networkTopic } from '../../controlplane/node/topics.ts';

const TOPIC = networkTopic('net1');
const text = (s: string) => new TextEncoder().encode(s);

test('meshes form within [Dlo, Dhi] over each node\'s connections, and are symmetric', (t) => {
  const cluster = new TablesCluster({ n: 100, seed: 2 });
  cluster.sim.runUntil(3_000);
  const { Dlo, Dhi } = GOSSIPSUB_DEFAULTS;
  for (const id of cluster.ids) {
    const node = cluster.node(id);
    const mesh = node.router.mesh(TOPIC);
    t.true(mesh.size >= Dlo && mesh.size <= Dhi, `${id}: mesh of ${mesh.size}`);
    for (const peer of mesh) {
      t.true(node.isConnected(peer), `${id} meshes only with connected peers`);
      t.true(cluster.node(peer).router.mesh(TOPIC).has(id), `${id} -> ${peer} is mutual`);
    }
  }
  t.true(cluster.graph.meanDegree() > 20 && cluster.graph.meanDegree() < 31, `mean degree ${cluster.graph.meanDegree()}`);
});

test('eager push: each node takes the first copy and forwards it once; later copies are dropped', (t) => {
  const cluster = new TablesCluster({ n: 100, seed: 4 });
  const { sim } = cluster;
  sim.runUntil(3_000);
  const before = new Map(cluster.ids.map((id) => [id, { ...cluster.node(id).router.counters }]));
  cluster.write('n9', 'endpoints/net1', 'e1', text('e1'));
  sim.runFor(500);
  let duplicates = 0;
  for (const id of cluster.ids) {
    const now = cluster.node(id).router.counters;
    const was = before.get(id) as typeof now;
    const first = now.firstCopies - was.firstCopies;
    t.is(first, id === 'n9' ? 0 : 1, `${id} validated the message exactly once`);
    duplicates += now.duplicates - was.duplicates;
    const sent = now.messagesSent - was.messagesSent;
    const bound = id === 'n9' ? cluster.node(id).connections().length : cluster.node(id).router.mesh(TOPIC).size;
    t.true(sent <= bound, `${id} sent ${sent} copies, at most ${bound}`);
    t.not(cluster.node(id).tables.get('endpoints/net1', 'e1'), undefined);
  }
  t.true(duplicates > 100, 'redundant paths exist (that is what makes loss harmless)');
});

test('lazy push: a node that lost every eager copy gets the message through IHAVE/IWANT at a heartbeat', (t) => {
  // No anti-entropy, so only gossipsub can deliver.
  const cluster = new TablesCluster({ n: 30, seed: 6, timing: { periodicSyncMs: Infinity } });
  const { sim } = cluster;
  sim.runUntil(3_000);
  const cutOff = 'n5';
  const neighbours = cluster.graph.neighbours(cutOff);
  for (const peer of neighbours) sim.network.setLinkLoss(cutOff, peer, 1);
  cluster.write('n20', 'endpoints/net1', 'late', text('late'));
  sim.runFor(100);
  t.is(cluster.node(cutOff).tables.get('endpoints/net1', 'late'), undefined, 'every eager copy was lost');
  t.is(cluster.upIds().filter((id) => cluster.node(id).tables.get('endpoints/net1', 'late') !== undefined).length, 29);
  for (const peer of neighbours) sim.network.setLinkLoss(cutOff, peer, 0);
  const arrived = sim.runUntilTrue(sim.now + 3 * GOSSIPSUB_DEFAULTS.heartbeatMs, () => cluster.node(cutOff).tables.get('endpoints/net1', 'late') !== undefined);
  t.true(arrived, 'delivered within the gossip window (3 heartbeats)');
  t.is(cluster.node(cutOff).router.counters.firstCopiesViaIwant, 1);
  t.true(cluster.node(cutOff).router.counters.iwantSent >= 1);
});

test('one endpoint entry reaches all of N = 100 at 1% loss well within a simulated second', (t) => {
  const result = runConvergence({ n: 100, seed: 5, network: { loss: 0.01 } });
  t.is(result.reached, 100);
  t.true((result.p100Ms as number) < 1_000, `100% after ${result.p100Ms} ms`);
  t.true((result.p50Ms as number) <= (result.p999Ms as number));
});

test('a run is a pure function of its seed', (t) => {
  const a = runConvergence({ n: 60, seed: 9, network: { loss: 0.05 } });
  const b = runConvergence({ n: 60, seed: 9, network: { loss: 0.05 } });
  const c = runConvergence({ n: 60, seed: 10, network: { loss: 0.05 } });
  t.deepEqual(a, b);
  t.notDeepEqual(a, c);
});
