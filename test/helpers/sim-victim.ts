// A settled simulated cluster with one node singled out: the start of the
// simulator tests that cut, crash or restart a node and watch the others.
import { TablesCluster } from '../../controlplane/sim/tables-cluster.ts';

/** `n` nodes with periodic sync off, run 2 simulated seconds; `victim` and the rest. */
export function settledWithVictim(n: number, seed: number, victim: string) {
  const cluster = new TablesCluster({ n, seed });
  cluster.setPeriodicSync(false);
  cluster.sim.runUntil(2_000);
  return { cluster, sim: cluster.sim, victim, others: cluster.ids.filter((id) => id !== victim) };
}
