// Healing after a partition on a real 3-host lab: h3's underlay link is cut
// for 15 s (long enough for the others to declare it dead and hide its
// endpoints), then restored; every host must show the healthy cluster's DNS
// answers (tasks.web), FDB and neighbour entries and LB table again, exactly.
// The bound is generous (30 s) so the test holds on a busy machine; the heal
// time itself is measured by bench/partition-heal.ts (goal: 3 s).
import test from 'ava';
import { labUp, labDown, type LabState } from '../../deploy/lab/lab.ts';
import { uniquePrefix } from '../helpers/weft-cli.ts';
import { partitionAndHeal, setUpHealScenario } from '../helpers/heal-scenario.ts';

const prefix = uniquePrefix('ph');
let lab: LabState;

test.before(async () => {
  lab = await labUp({ hosts: 3, prefix });
});

test.after.always(async () => {
  await labDown(prefix);
});

test.serial('after a 15 s cut of one host, every host matches the live truth again within 30 s', async (t) => {
  t.timeout(180_000);
  const setup = await setUpHealScenario(lab);
  const victim = lab.hosts[2]!;
  const trial = await partitionAndHeal(lab, setup, victim, 15_000, 30_000);
  t.log(`healed in ${trial.healMs ?? '-'} ms; ${victim.name} alive everywhere after ${trial.aliveEverywhereMs ?? '-'} ms`);
  t.true(trial.diverged, 'the cut never showed on any host: the test did not partition anything');
  t.not(trial.healMs, undefined, `still different 30 s after the link came back: ${trial.stillDifferent.join('; ')}`);
});
