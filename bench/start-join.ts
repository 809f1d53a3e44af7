// How fast a host comes into service: agent start -> its API answers (a
// fresh data dir, started as installed agents are, through bin/weft), and
// `weft join` -> the new member alive in the members view of every other
// host. A lab of CLUSTER members plus one spare host; each round the spare
// leaves, its agent stops, its data dir is wiped, and it starts and joins
// again as a new node. Goals (issue 16): start <= 1 s, join -> alive
// everywhere <= 1.5 s. The load average is printed and saved: the machine may
// be shared. Prints a table and writes bench/results/start-join.json.
// Usage: node_modules/.bin/node bench/start-join.ts [rounds (default 10)] [cluster members (default 3)]
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { labDown, labUp, restartAgent, withClient, type LabHost } from '../deploy/lab/lab.ts';
import { isProcessAlive } from '../lib/process-alive.ts';
import { uniquePrefix } from '../test/helpers/weft-cli.ts';

const ROUNDS = Number(process.argv[2] ?? 10);
const MEMBERS = Number(process.argv[3] ?? 3);
const DEADLINE_MS = 60_000;
const POLL_MS = 10;
const prefix = uniquePrefix('sj');

const loadAverage = (): string => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
const quantile = (values: number[], q: number): number => [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor(q * values.length))] ?? NaN;
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

const call = <T>(host: LabHost, method: string, request: object = {}): Promise<T> => withClient(host, (c) => c.call<T>(method, request));

/** Polls until `check` holds; returns the milliseconds since `since`. */
async function until(what: string, since: number, check: () => Promise<boolean>): Promise<number> {
  while (performance.now() - since < DEADLINE_MS) {
    if (await check().catch(() => false)) return performance.now() - since;
    await sleep(POLL_MS);
  }
  throw new Error(`${what}: not within ${DEADLINE_MS / 1000} s`);
}

async function stopAgent(host: LabHost): Promise<void> {
  process.kill(host.pid, 'SIGTERM');
  await until(`the agent of ${host.name} to exit`, performance.now(), async () => !isProcessAlive(host.pid));
}

interface Member { nodeId: string; state: string }
const aliveOn = async (host: LabHost, nodeId: string): Promise<boolean> =>
  (await call<{ members: Member[] }>(host, 'Members')).members.some((m) => m.nodeId === nodeId && m.state === 'alive');

const startMs: number[] = [];
const joinCallMs: number[] = [];
const aliveMs: number[] = [];
const loadAtStart = loadAverage();
try {
  const lab = await labUp({ hosts: MEMBERS + 1, members: MEMBERS, prefix });
  const members = lab.hosts.slice(0, MEMBERS);
  let spare = lab.hosts[MEMBERS]!;
  for (let round = 0; round < ROUNDS; round++) {
    await stopAgent(spare);
    rmSync(spare.dataDir, { recursive: true, force: true });
    const started = performance.now();
    spare = restartAgent(prefix, spare.name, 'warn');
    startMs.push(await until('the API to answer', started, async () => (await call<{ name: string }>(spare, 'Status')).name !== ''));
    const joining = performance.now();
    await call(spare, 'Join', { token: lab.token, address: `${members[0]!.ip}:2377` });
    joinCallMs.push(performance.now() - joining);
    const { nodeId } = await call<{ nodeId: string }>(spare, 'Status');
    const each = await Promise.all(members.map((host) => until(`${spare.name} alive on ${host.name}`, joining, () => aliveOn(host, nodeId))));
    aliveMs.push(Math.max(...each));
    await call(spare, 'Leave');
  }
} finally {
  await labDown(prefix);
}

const rows = [
  ['agent start -> API answers (fresh data dir)', startMs, 1000],
  ['weft join call returns', joinCallMs, undefined],
  ['weft join -> alive on every other host', aliveMs, 1500],
] as const;
const loadAtEnd = loadAverage();
console.log(`host into service, ${ROUNDS} rounds, ${MEMBERS} members + 1 joining (ms)`);
console.log('figure'.padEnd(46), 'p50'.padStart(7), 'p90'.padStart(7), 'max'.padStart(7), 'goal'.padStart(7));
for (const [name, values, goal] of rows) {
  console.log(name.padEnd(46), ...[0.5, 0.9, 1].map((q) => quantile(values, q).toFixed(0).padStart(7)), (goal === undefined ? '-' : String(goal)).padStart(7));
}
console.log(`load average at start ${loadAtStart}, at end ${loadAtEnd} (2 cores)`);
mkdirSync('bench/results', { recursive: true });
writeFileSync('bench/results/start-join.json', JSON.stringify({
  date: new Date().toISOString(), rounds: ROUNDS, members: MEMBERS, loadAtStart, loadAtEnd,
  startMs, joinCallMs, aliveMs,
}, null, 2) + '\n');
