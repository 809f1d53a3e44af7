// CNI ADD and DEL wall time: weft's plugin (bin/weft-cni, through a lab host's
// agent) against containernetworking-plugins' `bridge` with host-local IPAM,
// in the same run on the same machine, alternating per iteration. The bridge
// plugin runs inside the lab host's namespace (its bridge is made there, never
// in the machine's own), with no masquerade nor gateway, so no iptables.
// Each iteration makes a fresh container namespace, ADDs, DELs, deletes it.
// Two phases: "first" with no other container on the network, so every ADD
// also makes the network's namespace, VXLAN device and bridge on the host and
// every DEL removes them (the first and last container of a network on a
// host); then "not first", with one resident container holding them, which
// is what most container starts on a busy host are.
// Where weft's time goes, per iteration: `weft VERSION` (the plugin starting
// and loading its modules, no call) and `agent ADD/DEL` (the same
// SandboxCreate / ContainerDetach calls made from this already-running
// process: the agent's own work, kernel included). The load average at the
// start and end is printed and saved: the machine may be shared.
// Prints a table and writes bench/results/cni.json.
// Usage: node_modules/.bin/node bench/cni.ts [iterations]
import { execa } from 'execa';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { labDown, labDir, callAgent } from '../deploy/lab/lab.ts';
import { uniquePrefix } from '../test/helpers/weft-cli.ts';
import { cniBenchHost, loadAverage, quantile, timedPlugin } from './cni-bench-host.ts';

const BRIDGE_PLUGIN = '/usr/lib/cni/bridge';
if (!existsSync(BRIDGE_PLUGIN)) {
  console.error(`bench/cni.ts needs ${BRIDGE_PLUGIN}: apt-get install containernetworking-plugins`);
  process.exit(2);
}
const ITERATIONS = Number(process.argv[2] ?? 20);
const WEFT_PLUGIN = fileURLToPath(new URL('../bin/weft-cni', import.meta.url));
const prefix = uniquePrefix('b');

const timed = (argv: string[], command: string, containerId: string, netns: string, config: object): Promise<number> =>
  timedPlugin(argv, { CNI_COMMAND: command, CNI_CONTAINERID: containerId, CNI_NETNS: netns }, config);

const loadAtStart = loadAverage();
type Kind = 'weft' | 'bridge' | 'agent';
type Phase = 'first' | 'notFirst';
const emptyTimes = (): Record<Kind, { add: number[]; del: number[] }> => ({ weft: { add: [], del: [] }, bridge: { add: [], del: [] }, agent: { add: [], del: [] } });
const phases: Record<Phase, Record<Kind, { add: number[]; del: number[] }>> = { first: emptyTimes(), notFirst: emptyTimes() };
const versionMs: number[] = [];
try {
  const { h1, config: weftConfig } = await cniBenchHost(prefix);
  const bridgeConfig = {
    cniVersion: '1.0.0', name: 'bridgebench', type: 'bridge', bridge: 'cnibench0', isGateway: false, ipMasq: false,
    ipam: { type: 'host-local', subnet: '198.51.100.0/24', dataDir: join(labDir(prefix), 'host-local') },
  };
  const plugins = {
    weft: { argv: [WEFT_PLUGIN], config: weftConfig },
    bridge: { argv: ['ip', 'netns', 'exec', h1.netns, BRIDGE_PLUGIN], config: bridgeConfig },
  };
  const runPhase = async (phase: Phase): Promise<void> => {
    const times = phases[phase];
    for (let i = 0; i < ITERATIONS + 1; i++) {
      const version = await timed(plugins.weft.argv, 'VERSION', '', '', {});
      const agentNs = `${prefix}-ca${i}`;
      await execa('ip', ['netns', 'add', agentNs]);
      let started = process.hrtime.bigint();
      await callAgent(h1, 'SandboxCreate', { networks: ['bench'], name: '', aliases: [], netns: `/run/netns/${agentNs}`, command: [], services: [], containerId: `agent${i}`, ifname: 'eth0' });
      const agentAdd = Number(process.hrtime.bigint() - started) / 1e6;
      started = process.hrtime.bigint();
      await callAgent(h1, 'ContainerDetach', { containerId: `agent${i}`, ifname: 'eth0' });
      const agentDel = Number(process.hrtime.bigint() - started) / 1e6;
      await execa('ip', ['netns', 'delete', agentNs]);
      if (i > 0) {
        if (phase === 'first') versionMs.push(version);
        times.agent.add.push(agentAdd);
        times.agent.del.push(agentDel);
      }
      const order = i % 2 === 0 ? (['weft', 'bridge'] as const) : (['bridge', 'weft'] as const);
      for (const kind of order) {
        const ns = `${prefix}-c${kind[0]}${i}`;
        await execa('ip', ['netns', 'add', ns]);
        const add = await timed(plugins[kind].argv, 'ADD', `bench${i}`, `/run/netns/${ns}`, plugins[kind].config);
        const del = await timed(plugins[kind].argv, 'DEL', `bench${i}`, `/run/netns/${ns}`, plugins[kind].config);
        await execa('ip', ['netns', 'delete', ns]);
        if (i === 0) continue; // warm-up: the first call of each pays for cold caches
        times[kind].add.push(add);
        times[kind].del.push(del);
      }
    }
  };
  await runPhase('first');
  // One resident container keeps the network realised on this host for the second phase.
  const residentNs = `${prefix}-resident`;
  await execa('ip', ['netns', 'add', residentNs]);
  await callAgent(h1, 'SandboxCreate', { networks: ['bench'], name: 'resident', aliases: [], netns: `/run/netns/${residentNs}`, command: [], services: [], containerId: 'resident', ifname: 'eth0' });
  await runPhase('notFirst');
  await callAgent(h1, 'ContainerDetach', { containerId: 'resident', ifname: 'eth0' });
} finally {
  await labDown(prefix);
}

const loadAtEnd = loadAverage();
const rows = (['first', 'notFirst'] as const).flatMap((phase) => (['weft', 'bridge', 'agent'] as const).map((kind) => {
  const times = phases[phase][kind];
  return {
    phase,
    plugin: kind,
    iterations: times.add.length,
    addP50Ms: Math.round(quantile(times.add, 0.5)),
    addP90Ms: Math.round(quantile(times.add, 0.9)),
    delP50Ms: Math.round(quantile(times.del, 0.5)),
    delP90Ms: Math.round(quantile(times.del, 0.9)),
  };
}));
console.log('container on the network   plugin  iterations  ADD p50  ADD p90  DEL p50  DEL p90 (ms)');
for (const r of rows) {
  const phase = r.phase === 'first' ? 'first (network made/gone)' : 'not first';
  console.log(`${phase.padEnd(27)}${r.plugin.padEnd(8)}${String(r.iterations).padStart(10)}${String(r.addP50Ms).padStart(9)}${String(r.addP90Ms).padStart(9)}${String(r.delP50Ms).padStart(9)}${String(r.delP90Ms).padStart(9)}`);
}
const versionP50Ms = Math.round(quantile(versionMs, 0.5));
console.log(`weft VERSION (start-up, no call) p50 ${versionP50Ms} ms; agent = the same calls from a running process`);
console.log(`load average at start ${loadAtStart}, at end ${loadAtEnd} (2 cores)`);
const out = fileURLToPath(new URL('./results/', import.meta.url));
mkdirSync(out, { recursive: true });
writeFileSync(join(out, 'cni.json'), JSON.stringify({ date: new Date().toISOString(), goalAddP50Ms: 150, loadAtStart, loadAtEnd, versionP50Ms, rows, raw: { ...phases, version: versionMs } }, null, 1));
