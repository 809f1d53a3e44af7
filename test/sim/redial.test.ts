// After a cut, both ends of a dropped connection dial it again, as the
// agent's dialer does (agent/cluster/member-dialer.ts: every node dials each
// active member it holds no connection to, every second); whichever dial
// lands first opens the one connection, and its dialling side opens the
// on-connect sync (controlplane/sim/tables-dialer.ts).
import test from 'ava';
import { settledWithVictim } from '../helpers/sim-victim.ts';
import { pollUntil } from '../../controlplane/sim/tables-convergence.ts';

test('after a cut both ends redial: each connection comes back once, dialled by whichever end got through first', (t) => {
  const { cluster, sim, victim, others } = settledWithVictim(10, 5, 'n4');
  cluster.partition([[victim], others]);
  const dead = () => others.every((id) => cluster.node(id).membership.member(victim)?.state === 'dead');
  t.true(sim.runUntilTrue(sim.now + 30_000, dead), 'declared dead by all the others');
  sim.runFor(1);
  t.deepEqual(others.filter((id) => cluster.node(id).isConnected(victim)), [], 'the others dropped their connections to it');
  t.deepEqual(others.filter((id) => cluster.node(victim).isConnected(id)), [], 'and so did the victim (the connection is gone at both ends)');

  cluster.heal();
  const reconnected = () => others.every((id) => cluster.node(id).isConnected(victim) && cluster.node(victim).isConnected(id));
  t.true(pollUntil(cluster, sim.now + 10_000, reconnected), 'every connection is back');
  const byVictim = others.filter((id) => cluster.node(victim).dialled(id) === true);
  const byOthers = others.filter((id) => cluster.node(id).dialled(victim) === true);
  t.true(byVictim.length > 0, `the cut-off node dialled some (${byVictim.join(', ')})`);
  t.true(byOthers.length > 0, `the others dialled some (${byOthers.join(', ')})`);
  // One connection per pair: exactly one end dialled it (the other end's attempt found it open).
  for (const id of others) t.not(cluster.node(victim).dialled(id), cluster.node(id).dialled(victim), `${victim} - ${id}: one dialler`);
});

test('a crashed node\'s peers keep dialling it, and the restarted node dials them: the connections come back', (t) => {
  const { cluster, sim, victim, others } = settledWithVictim(10, 9, 'n2');
  cluster.crash(victim);
  t.true(sim.runUntilTrue(sim.now + 30_000, () => others.every((id) => !cluster.node(id).isConnected(victim))), 'its connections closed');
  cluster.restart(victim);
  t.true(pollUntil(cluster, sim.now + 5_000, () => others.every((id) => cluster.node(id).isConnected(victim))), 'all back');
});
