// A one-minute churn soak on a 3-host lab (bench/soak.ts runs the long one):
// after every round of random changes, kills, restarts and link cuts, every
// host matches the truth again.
import test from 'ava';
import { runSoak } from '../helpers/soak.ts';
import { uniquePrefix } from '../helpers/weft-cli.ts';

test('one minute of churn leaves every host matching the truth after each quiet period', async (t) => {
  const seed = Number(process.env['WEFT_SOAK_SEED'] ?? Math.floor(Math.random() * 2 ** 31));
  t.log(`seed ${seed} (replay with WEFT_SOAK_SEED=${seed})`);
  const report = await runSoak({
    prefix: uniquePrefix('k'), hosts: 3, durationMs: 60_000, seed, operationsPerRound: 6, settleTimeoutMs: 90_000,
    log: (line) => t.log(line),
  });
  t.log(`operations ${JSON.stringify(report.operations)}, refused ${JSON.stringify(report.refused)}, heal ms ${report.healTimesMs.join(',')}`);
  t.true(report.quietPeriods >= 2, `only ${report.quietPeriods} quiet periods ran`);
  t.deepEqual(report.violations, []);
});
