// The real Membership code, many instances, on the deterministic simulator.
import test from 'ava';
import type { MemberState, SwimMessage } from '../../controlplane/membership/messages.ts';
import { runCrash, runQuiet } from '../../controlplane/sim/failure-detection.ts';
import { MembershipCluster } from '../../controlplane/sim/membership-cluster.ts';

function countStates(cluster: MembershipCluster) {
  const counts = new Map<MemberState, number>();
  cluster.onChange(({ member }) => counts.set(member.state, (counts.get(member.state) ?? 0) + 1));
  return counts;
}

test('100 nodes joining through one seed converge to all-alive, with no suspicion', (t) => {
  const cluster = new MembershipCluster({ n: 100, seed: 11, bootstrap: 'join', joinSpacingMs: 20 });
  const counts = countStates(cluster);
  const lastJoin = 99 * 20;
  const ok = cluster.sim.runUntilTrue(30_000, () => cluster.sim.now > lastJoin && cluster.converged());
  t.true(ok, 'converged');
  for (const id of cluster.ids) t.is(cluster.membership(id).members().filter((m) => m.state === 'alive').length, 100);
  t.is(counts.get('suspect') ?? 0, 0);
  t.is(counts.get('dead') ?? 0, 0);
});

test('a crashed node is marked dead on every other node, and nobody else is', (t) => {
  for (const [n, seed] of [
    [10, 1],
    [50, 2],
  ] as const) {
    const result = runCrash({ n, seed, limitMs: 60_000 });
    t.not(result.allDeadMs, null, `N=${n}: every survivor declared the crash`);
    t.is(result.falseDead, 0);
  }
});

test('a crashed node that restarts with a fresh incarnation is alive again everywhere', (t) => {
  const cluster = new MembershipCluster({ n: 20, seed: 5 });
  const sim = cluster.sim;
  sim.runUntil(5_000);
  cluster.crash('n3');
  t.true(sim.runUntilTrue(40_000, () => cluster.upIds().every((id) => cluster.stateOf(id, 'n3') === 'dead')));
  cluster.restart('n3', 'n8');
  t.true(sim.runUntilTrue(sim.now + 10_000, () => cluster.converged()));
  const incarnation = cluster.membership('n3').member('n3')?.incarnation ?? 0;
  t.true(incarnation >= 1, 'outbid its own death certificate');
  for (const id of cluster.upIds()) t.like(cluster.membership(id).member('n3'), { state: 'alive', incarnation });
});

test('30% partition: each side declares the other dead; after heal and one push-pull all are alive', (t) => {
  const cluster = new MembershipCluster({ n: 100, seed: 7 });
  const sim = cluster.sim;
  sim.runUntil(5_000);
  const minority = cluster.ids.slice(0, 30);
  const majority = cluster.ids.slice(30);
  sim.network.partition([minority, majority]);
  const split = () => minority.every((a) => majority.every((b) => cluster.stateOf(a, b) === 'dead' && cluster.stateOf(b, a) === 'dead'));
  t.true(sim.runUntilTrue(120_000, split), 'both sides see the other dead');
  for (const a of minority) for (const b of minority) if (a !== b) t.is(cluster.stateOf(a, b), 'alive');
  for (const a of majority.slice(0, 10)) for (const b of majority) if (a !== b) t.is(cluster.stateOf(a, b), 'alive');

  sim.network.heal();
  // The agent reconnects to one dead member and runs anti-entropy: a single exchange.
  cluster.pushPull(minority[0] as string, majority[0] as string);
  t.true(sim.runUntilTrue(sim.now + 30_000, () => cluster.converged()), 'all alive again');
  let falseDead = 0;
  cluster.onChange(({ member }) => {
    if (member.state === 'dead') falseDead++;
  });
  sim.runFor(30_000);
  t.true(cluster.converged(), 'and it stays that way');
  t.is(falseDead, 0);
});

test('a settled cluster without loss sends only probes: gossip stops when there is nothing to say', (t) => {
  const cluster = new MembershipCluster({ n: 50, seed: 4 });
  cluster.sim.runUntil(10_000);
  const before = new Map(cluster.sim.nodes().map((node) => [node.id, new Map(node.sentByKind)]));
  const sentBefore = cluster.sim.stats.sent;
  cluster.sim.runUntil(70_000);
  let gossip = 0;
  let pingReq = 0;
  for (const node of cluster.sim.nodes()) {
    const old = before.get(node.id);
    gossip += (node.sentByKind.get('gossip') ?? 0) - (old?.get('gossip') ?? 0);
    pingReq += (node.sentByKind.get('pingReq') ?? 0) - (old?.get('pingReq') ?? 0);
  }
  t.is(gossip, 0);
  t.is(pingReq, 0);
  // One ping and one ack per node per 500 ms probe interval.
  const perNodePerSecond = (cluster.sim.stats.sent - sentBefore) / 50 / 60;
  t.true(perNodePerSecond > 3.9 && perNodePerSecond < 4.1, `${perNodePerSecond} msgs/node/s`);
});

test('a quiet cluster at 10% loss: suspicions happen and are all refuted, no false dead in 10 minutes', (t) => {
  for (const seed of [1, 2]) {
    const result = runQuiet({ n: 15, seed, loss: 0.1, durationMs: 600_000 });
    t.true(result.suspicions > 0, 'loss did cause suspicions (the refutation path was exercised)');
    t.is(result.falseDead, 0);
  }
});

test('a node that leaves is marked left everywhere, never dead', (t) => {
  const cluster = new MembershipCluster({ n: 20, seed: 3 });
  const sim = cluster.sim;
  const dead: string[] = [];
  cluster.onChange(({ member }) => {
    if (member.state === 'dead') dead.push(member.id);
  });
  sim.runUntil(5_000);
  sim.invoke('n4', (node, now) => node.route(now, node.membership.leave(now)));
  // The agent keeps ticking until the queue drains, then exits.
  t.true(sim.runUntilTrue(sim.now + 5_000, () => cluster.membership('n4').pendingBroadcasts === 0));
  cluster.crash('n4');
  sim.runFor(60_000);
  for (const id of cluster.upIds()) t.like(cluster.membership(id).member('n4'), { state: 'left', incarnation: 1 });
  t.deepEqual(dead, []);
});

test('same seed, same run; another seed, another run', (t) => {
  const trace = (seed: number) => {
    const cluster = new MembershipCluster({ n: 30, seed, network: { loss: 0.05 } });
    const events: string[] = [];
    cluster.onChange(({ at, observer, member }) => events.push(`${at.toFixed(3)} ${observer} ${member.id} ${member.state} ${member.incarnation}`));
    cluster.sim.runUntil(3_000);
    cluster.crash('n7');
    cluster.sim.runUntil(20_000);
    return { events, stats: { ...cluster.sim.stats } };
  };
  const a = trace(42);
  t.true(a.events.length > 20);
  t.deepEqual(trace(42), a);
  t.notDeepEqual(trace(43), a);
});

test('every wire message is plain data that survives a JSON round trip unchanged', (t) => {
  const cluster = new MembershipCluster({ n: 12, seed: 9, network: { loss: 0.2 } });
  const seen = new Set<string>();
  const plain = (value: unknown): boolean => {
    if (typeof value === 'string' || typeof value === 'boolean') return true;
    if (typeof value === 'number') return Number.isInteger(value) && value >= 0 && value < 2 ** 32;
    if (Array.isArray(value)) return value.every(plain);
    if (typeof value === 'object' && value !== null && Object.getPrototypeOf(value) === Object.prototype) {
      return Object.values(value).every(plain);
    }
    return false;
  };
  let bad = 0;
  for (const node of cluster.sim.nodes()) {
    const route = node.route.bind(node);
    node.route = (now, effects) => {
      for (const e of effects) {
        if (e.kind !== 'send') continue;
        const message: SwimMessage = e.message;
        seen.add(message.kind);
        if (!plain(message) || JSON.stringify(JSON.parse(JSON.stringify(message))) !== JSON.stringify(message)) bad++;
      }
      return route(now, effects);
    };
  }
  cluster.sim.runUntil(2_000);
  cluster.crash('n1');
  cluster.sim.runUntil(30_000);
  t.is(bad, 0);
  t.deepEqual([...seen].sort(), ['ack', 'gossip', 'nack', 'ping', 'pingReq']);
  t.true(plain(cluster.membership('n2').snapshot()));
});
