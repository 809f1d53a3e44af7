// The CNI plugin's own share of an ADD/DEL: this checkout's plugin against
// another checkout's (BASELINE, a path to its bin/weft-cni), alternating per
// iteration, both against ONE agent (this checkout's, on one lab host; an
// agent keeps the methods an older plugin calls), so that what differs is the
// plugin. A resident container holds the network, so no ADD makes it.
// Start-up is timed too (VERSION, no call), next to the bare start of the
// interpreters a plugin can run on (`node -e 0`, `python3 -IS -c pass`). The
// load average is printed and saved: the machine may be shared.
// Prints a table and writes bench/results/cni-plugin.json.
// Usage: node_modules/.bin/node bench/cni-plugin.ts BASELINE/bin/weft-cni [iterations (default 20)]
import { execa } from 'execa';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { labDown, callAgent } from '../deploy/lab/lab.ts';
import { uniquePrefix } from '../test/helpers/weft-cli.ts';
import { cniBenchHost, loadAverage, quantile, timedPlugin } from './cni-bench-host.ts';

const BASELINE = process.argv[2] ?? '';
if (!existsSync(BASELINE)) {
  console.error('usage: node_modules/.bin/node bench/cni-plugin.ts BASELINE/bin/weft-cni [iterations]  (BASELINE: another weft checkout, with its node_modules)');
  process.exit(2);
}
const ITERATIONS = Number(process.argv[3] ?? 20);
const PLUGIN = fileURLToPath(new URL('../bin/weft-cni', import.meta.url));
const prefix = uniquePrefix('p');

const roundedQuantile = (values: number[], q: number): number => Math.round(quantile(values, q));

const starts: Record<string, string[]> = {
  'node -e 0': [process.execPath, '-e', '0'],
  'python3 -IS -c pass': ['/usr/bin/python3', '-IS', '-c', 'pass'],
  'baseline bin/weft-cni': [BASELINE],
  'this bin/weft-cni': [PLUGIN],
};
const startMs: Record<string, number[]> = Object.fromEntries(Object.keys(starts).map((k) => [k, []]));
const calls = { baseline: { add: [] as number[], del: [] as number[] }, this: { add: [] as number[], del: [] as number[] } };
const loadAtStart = loadAverage();
try {
  const { h1, config } = await cniBenchHost(prefix);
  const resident = `${prefix}-resident`;
  await execa('ip', ['netns', 'add', resident]);
  await callAgent(h1, 'SandboxCreate', { networks: ['bench'], name: 'resident', aliases: [], netns: `/run/netns/${resident}`, command: [], services: [], containerId: 'resident', ifname: 'eth0' });
  const plugins = { baseline: BASELINE, this: PLUGIN };
  for (let i = 0; i < ITERATIONS + 1; i++) {
    for (const [name, argv] of Object.entries(starts)) {
      const ms = await timedPlugin(argv, { CNI_COMMAND: 'VERSION' }, {});
      if (i > 0) startMs[name]!.push(ms);
    }
    const order = i % 2 === 0 ? (['baseline', 'this'] as const) : (['this', 'baseline'] as const);
    for (const kind of order) {
      const ns = `${prefix}-${kind[0]}${i}`;
      await execa('ip', ['netns', 'add', ns]);
      const container = { CNI_CONTAINERID: `bench${kind}${i}`, CNI_NETNS: `/run/netns/${ns}` };
      const add = await timedPlugin([plugins[kind]], { CNI_COMMAND: 'ADD', ...container }, config);
      const del = await timedPlugin([plugins[kind]], { CNI_COMMAND: 'DEL', ...container }, config);
      await execa('ip', ['netns', 'delete', ns]);
      if (i === 0) continue; // warm-up: cold caches
      calls[kind].add.push(add);
      calls[kind].del.push(del);
    }
  }
  await callAgent(h1, 'ContainerDetach', { containerId: 'resident', ifname: 'eth0' });
} finally {
  await labDown(prefix);
}

const loadAtEnd = loadAverage();
const startRows = Object.entries(startMs).map(([name, v]) => ({ name, p50Ms: roundedQuantile(v, 0.5), p90Ms: roundedQuantile(v, 0.9) }));
const callRows = (['baseline', 'this'] as const).map((kind) => ({
  plugin: kind, iterations: calls[kind].add.length,
  addP50Ms: roundedQuantile(calls[kind].add, 0.5), addP90Ms: roundedQuantile(calls[kind].add, 0.9), delP50Ms: roundedQuantile(calls[kind].del, 0.5), delP90Ms: roundedQuantile(calls[kind].del, 0.9),
}));
console.log(`baseline: ${BASELINE}`);
console.log('start-up (VERSION, no call)          p50     p90 (ms)');
for (const r of startRows) console.log(`${r.name.padEnd(34)}${String(r.p50Ms).padStart(7)}${String(r.p90Ms).padStart(8)}`);
console.log('plugin     iterations  ADD p50  ADD p90  DEL p50  DEL p90 (ms; one agent, not the first container)');
for (const r of callRows) console.log(`${r.plugin.padEnd(10)}${String(r.iterations).padStart(11)}${String(r.addP50Ms).padStart(9)}${String(r.addP90Ms).padStart(9)}${String(r.delP50Ms).padStart(9)}${String(r.delP90Ms).padStart(9)}`);
console.log(`load average at start ${loadAtStart}, at end ${loadAtEnd} (2 cores)`);
const out = fileURLToPath(new URL('./results/', import.meta.url));
mkdirSync(out, { recursive: true });
writeFileSync(join(out, 'cni-plugin.json'), JSON.stringify({ date: new Date().toISOString(), baseline: BASELINE, loadAtStart, loadAtEnd, startRows, callRows, raw: { start: startMs, calls } }, null, 1));
