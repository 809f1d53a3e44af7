// A host that was down for longer than the tombstone reap time comes back
// holding entries whose delete the others no longer remember. On a 3-host lab
// whose agents reap endpoint tombstones after 5 s: the returning host must not
// bring back an endpoint (its owner settles it, docs/tables.md) nor a service
// (cluster-scoped tombstones are kept for 7 days).
import test from 'ava';
import { setTimeout as sleep } from 'node:timers/promises';
import { labUp, labDown, restartAgent, waitForAgent, type LabState, type LabHost } from '../../deploy/lab/lab.ts';
import { weftOn, uniquePrefix, eventually } from '../helpers/weft-cli.ts';

const prefix = uniquePrefix('r');
const REAP_SECONDS = 5;
let lab: LabState;
const host = (name: string): LabHost => lab.hosts.find((h) => h.name === name)!;

async function ok(h: LabHost, args: string[]): Promise<string> {
  const r = await weftOn(h, args);
  if (r.exitCode !== 0) throw new Error(`weft ${args.join(' ')} on ${h.name} exited ${r.exitCode}: ${r.stderr}`);
  return r.stdout;
}

const endpointNames = async (h: LabHost): Promise<string> =>
  (JSON.parse(await ok(h, ['endpoints', '--network', 'reap', '--json'])) as Array<{ name: string }>).map((e) => e.name).sort().join();
const serviceNames = async (h: LabHost): Promise<string> =>
  (JSON.parse(await ok(h, ['service', 'ls', '--json'])) as Array<{ name: string }>).map((s) => s.name).sort().join();

test.before(async () => {
  lab = await labUp({ hosts: 3, prefix, agentConfig: { tableReapSeconds: REAP_SECONDS } });
});

test.after.always(async () => {
  await labDown(prefix);
});

test.serial('a host down longer than the reap time brings back neither a removed endpoint nor a removed service', async (t) => {
  await ok(host('h1'), ['network', 'create', 'reap']);
  for (const [h, name] of [['h1', 'x'], ['h2', 'q'], ['h3', 'p']] as const) {
    await ok(host(h), ['run', '--detach', '--network', 'reap', '--name', name, '--', 'sleep', '3600']);
  }
  await ok(host('h1'), ['service', 'create', 'gone', '--network', 'reap']);
  await eventually('h3 to hold x and the service', async () => (await endpointNames(host('h3'))) === 'p,q,x' && (await serviceNames(host('h3'))) === 'gone', 60_000);

  process.kill(host('h3').pid, 'SIGKILL');
  const x = (JSON.parse(await ok(host('h1'), ['endpoints', '--network', 'reap', '--json'])) as Array<{ name: string; netns: string }>).find((e) => e.name === 'x')!;
  await ok(host('h1'), ['detach', '--netns', x.netns]);
  await ok(host('h2'), ['service', 'rm', 'gone']);
  for (const h of ['h1', 'h2']) {
    // p may be listed or hidden, depending on whether h3 is declared dead yet.
    await eventually(`${h} to see both deletes`, async () => !(await endpointNames(host(h))).split(',').includes('x') && (await serviceNames(host(h))) === '', 60_000);
  }
  // Past the reap deadline (and the reap timer, which runs at least every REAP_SECONDS): the
  // endpoint tombstones are gone on h1 and h2; only a longer wait is safe here, never a shorter one.
  await sleep(3 * REAP_SECONDS * 1000);

  const h3 = restartAgent(prefix, 'h3');
  lab.hosts = lab.hosts.map((h) => (h.name === 'h3' ? h3 : h));
  await waitForAgent(h3);
  // Periodic anti-entropy runs every 30 s; twice that is ample for the owner to settle x everywhere.
  for (const h of lab.hosts) {
    // h1 left reap with x, its last endpoint there: it lists none of reap's endpoints.
    const expected = h.name === 'h1' ? '' : 'p,q';
    const seen = await eventually(`${h.name} to settle`, async () => ((await endpointNames(h)) === expected && (await serviceNames(h)) === '' ? true : undefined), 90_000)
      .catch(async () => `endpoints ${await endpointNames(h)}; services ${await serviceNames(h)}`);
    t.is(seen, true, `${h.name} still lists ${String(seen)}`);
  }
});
