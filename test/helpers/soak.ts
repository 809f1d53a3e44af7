// The churn soak: random operations on a lab (sandboxes, services, backends
// created and removed; agents killed and restarted, cleanly and with kill -9;
// underlay links cut and healed), and after every few operations a quiet
// period in which every host must come to match the truth this file keeps
// itself: endpoints, FDB and neighbour entries, DNS answers, every probe
// sandbox's load-balancing table, no duplicate IP, and `weft doctor` clean.
// The kernel and resolver reads are test/helpers/lab-truth.ts's, shared with
// the partition heal scenario.
// bench/soak.ts runs it for minutes; test/e2e/soak.test.ts for a minute.
import { copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { labUp, labDown, restartAgent, callAgent, waitForAgent, setUnderlayLink, type LabState, type LabHost } from '../../deploy/lab/lab.ts';
import { isProcessAlive } from '../../lib/process-alive.ts';
import { FLOOD_MAC, readNetworkState, readSandboxState, sameSet, setDiff, type SandboxState } from './lab-truth.ts';

export interface SoakOptions {
  prefix: string;
  hosts: number;
  durationMs: number;
  seed: number;
  /** Operations between two quiet periods. */
  operationsPerRound: number;
  /** How long a quiet period may take to match the truth before it counts as a violation. */
  settleTimeoutMs: number;
  log: (line: string) => void;
  /** Where to copy every agent's log when a quiet period took longer than slowHealMs or failed. */
  logsDir?: string;
  slowHealMs?: number;
}

export interface SoakReport {
  operations: Record<string, number>;
  refused: Record<string, number>;
  quietPeriods: number;
  violations: string[];
  healTimesMs: number[];
}

interface SandboxTruth { name: string; host: string; netns: string; ip: string; mac: string; services: string[]; probe: boolean }
interface ServiceTruth { name: string; vip: string }
interface HostState { host: LabHost; down: boolean; cut: boolean }
interface SandboxReply { netns: string; endpoints: Array<{ ip: string; mac: string }> }

const NETWORK = 'soak';
const MAX_SERVICES = 4;
const MAX_SANDBOXES_PER_HOST = 6;

/** A small seeded generator (mulberry32): a failing soak is replayed with the same seed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function runSoak(options: SoakOptions): Promise<SoakReport> {
  const soak = new Soak(options);
  try {
    await soak.setUp();
    await soak.run();
    return soak.report;
  } finally {
    await labDown(options.prefix);
  }
}

class Soak {
  readonly report: SoakReport = { operations: {}, refused: {}, quietPeriods: 0, violations: [], healTimesMs: [] };
  readonly #o: SoakOptions;
  readonly #random: () => number;
  readonly #sandboxes = new Map<string, SandboxTruth>();
  readonly #services = new Map<string, ServiceTruth>();
  readonly #restores: Array<Promise<void>> = [];
  #hosts: HostState[] = [];
  #lab!: LabState;
  #vni = 0;
  #counter = 0;

  constructor(options: SoakOptions) {
    this.#o = options;
    this.#random = rng(options.seed);
  }

  async setUp(): Promise<void> {
    this.#lab = await labUp({ hosts: this.#o.hosts, prefix: this.#o.prefix });
    this.#hosts = this.#lab.hosts.map((host) => ({ host, down: false, cut: false }));
    const network = await callAgent<{ vni: number }>(this.#lab.hosts[0]!, 'NetworkCreate', { name: NETWORK, subnet: '', vni: 0, internal: false });
    this.#vni = network.vni;
    // One probe sandbox per host, never removed: DNS and load balancing are checked from it.
    for (const state of this.#hosts) await this.#createSandbox(state, `probe-${state.host.name}`, [], true);
  }

  async run(): Promise<void> {
    const end = Date.now() + this.#o.durationMs;
    while (Date.now() < end) {
      for (let i = 0; i < this.#o.operationsPerRound && Date.now() < end; i++) {
        await this.#randomOperation();
        await sleep(Math.floor(this.#random() * 300));
      }
      await this.#quietPeriod();
    }
  }

  #pick<T>(items: readonly T[]): T | undefined {
    return items.length === 0 ? undefined : items[Math.floor(this.#random() * items.length)];
  }

  #count(kind: string, outcome: 'operations' | 'refused'): void {
    this.report[outcome][kind] = (this.report[outcome][kind] ?? 0) + 1;
  }

  async #randomOperation(): Promise<void> {
    const table: Array<[number, string, () => Promise<void>]> = [
      [3, 'sandbox add', () => this.#addSandbox([])],
      [3, 'backend add', () => this.#addBackend()],
      [3, 'sandbox remove', () => this.#removeSandbox()],
      [1, 'service add', () => this.#addService()],
      [1, 'service remove', () => this.#removeService()],
      [1, 'agent kill -9', () => this.#disruptAgent('KILL')],
      [1, 'agent restart', () => this.#disruptAgent('TERM')],
      [1, 'link cut', () => this.#cutLink()],
    ];
    let roll = this.#random() * table.reduce((sum, [weight]) => sum + weight, 0);
    for (const [weight, kind, operation] of table) {
      roll -= weight;
      if (roll > 0) continue;
      try {
        await operation();
        this.#count(kind, 'operations');
      } catch (error) {
        // Refusals (no live host, a partitioned host without address space) are allowed;
        // whatever a refused call left behind shows up as a violation in the next check.
        this.#count(kind, 'refused');
        this.#o.log(`${kind} refused: ${(error as Error).message.split('\n')[0]}`);
      }
      return;
    }
  }

  #usableHosts(): HostState[] {
    return this.#hosts.filter((h) => !h.down);
  }

  async #createSandbox(state: HostState, name: string, services: string[], probe = false): Promise<void> {
    const command = services.length > 0 ? ['socat', 'TCP-LISTEN:80,fork,reuseaddr', `SYSTEM:echo ${name}`] : ['sleep', '1000000'];
    const reply = await callAgent<SandboxReply>(state.host, 'SandboxCreate', { networks: [NETWORK], name, aliases: [], netns: '', services, command });
    const endpoint = reply.endpoints[0]!;
    this.#sandboxes.set(name, { name, host: state.host.name, netns: reply.netns, ip: endpoint.ip, mac: endpoint.mac, services, probe });
  }

  async #addSandbox(services: string[]): Promise<void> {
    const state = this.#pick(this.#usableHosts().filter((h) => this.#onHost(h.host.name).length < MAX_SANDBOXES_PER_HOST));
    if (!state) throw new Error('no host with room for a sandbox');
    await this.#createSandbox(state, `s${++this.#counter}`, services);
  }

  async #addBackend(): Promise<void> {
    const service = this.#pick([...this.#services.keys()]);
    if (!service) throw new Error('no service to back');
    await this.#addSandbox([service]);
  }

  #onHost(name: string): SandboxTruth[] {
    return [...this.#sandboxes.values()].filter((s) => s.host === name);
  }

  async #removeSandbox(): Promise<void> {
    const usable = new Set(this.#usableHosts().map((h) => h.host.name));
    const victim = this.#pick([...this.#sandboxes.values()].filter((s) => !s.probe && usable.has(s.host)));
    if (!victim) throw new Error('no sandbox to remove');
    const state = this.#hosts.find((h) => h.host.name === victim.host)!;
    await callAgent(state.host, 'SandboxDetach', { netns: victim.netns, network: '' });
    this.#sandboxes.delete(victim.name);
  }

  async #addService(): Promise<void> {
    if (this.#services.size >= MAX_SERVICES) throw new Error(`already ${MAX_SERVICES} services`);
    const state = this.#pick(this.#usableHosts());
    if (!state) throw new Error('no live host');
    const name = `svc${++this.#counter}`;
    const reply = await callAgent<{ vip: string }>(state.host, 'ServiceCreate', { name, network: NETWORK, ports: [{ port: 80, protocol: 'tcp' }], mode: 'vip', health: '' });
    this.#services.set(name, { name, vip: reply.vip });
  }

  async #removeService(): Promise<void> {
    const name = this.#pick([...this.#services.keys()]);
    const state = this.#pick(this.#usableHosts());
    if (!name || !state) throw new Error('no service or no live host');
    await callAgent(state.host, 'ServiceRemove', { name });
    this.#services.delete(name);
  }

  /** Stops one agent (kill -9 or SIGTERM) and brings it back after 0.5-6 s, in the background. */
  async #disruptAgent(signal: 'KILL' | 'TERM'): Promise<void> {
    const state = this.#pick(this.#usableHosts().filter((h) => !h.cut));
    if (!state || this.#usableHosts().length < 2) throw new Error('no second live host');
    state.down = true;
    process.kill(state.host.pid, `SIG${signal}`);
    const downForMs = 500 + Math.floor(this.#random() * 5_500);
    this.#restores.push((async () => {
      const deadline = Date.now() + 15_000;
      while (isProcessAlive(state.host.pid) && Date.now() < deadline) await sleep(100);
      if (isProcessAlive(state.host.pid)) throw new Error(`the agent of ${state.host.name} did not exit on SIG${signal}`);
      await sleep(downForMs);
      state.host = restartAgent(this.#o.prefix, state.host.name);
      await waitForAgent(state.host);
      state.down = false;
    })());
  }

  /** Cuts one host off the underlay for 1-10 s, in the background. */
  async #cutLink(): Promise<void> {
    const state = this.#pick(this.#hosts.filter((h) => !h.cut && !h.down));
    if (!state) throw new Error('no host to cut off');
    state.cut = true;
    await setUnderlayLink(this.#o.prefix, state.host.name, false);
    const cutForMs = 1_000 + Math.floor(this.#random() * 9_000);
    this.#restores.push((async () => {
      await sleep(cutForMs);
      await setUnderlayLink(this.#o.prefix, state.host.name, true);
      state.cut = false;
    })());
  }

  /** Waits for every disruption to end, then for every host to match the truth. */
  async #quietPeriod(): Promise<void> {
    const restores = this.#restores.splice(0);
    const failures = (await Promise.allSettled(restores)).filter((r) => r.status === 'rejected');
    for (const f of failures) this.report.violations.push(`restoring a host failed: ${String((f as PromiseRejectedResult).reason)}`);
    const start = Date.now();
    let problems: string[] = [];
    let lastSeen: string[] = [];
    while (Date.now() - start < this.#o.settleTimeoutMs) {
      problems = await this.#check();
      if (problems.length === 0) break;
      lastSeen = problems;
      await sleep(250);
    }
    this.report.quietPeriods++;
    if (problems.length > 0 || Date.now() - start > (this.#o.slowHealMs ?? Infinity)) this.#keepLogs();
    if (problems.length === 0) {
      this.report.healTimesMs.push(Date.now() - start);
      // What was still wrong last tells where a slow heal spent its time.
      const slow = lastSeen.length > 0 ? `; last still wrong: ${lastSeen.slice(0, 4).join(' | ')}` : '';
      this.#o.log(`quiet period ${this.report.quietPeriods}: matched the truth after ${Date.now() - start} ms (${this.#sandboxes.size} sandboxes, ${this.#services.size} services)${slow}`);
    } else {
      this.report.violations.push(...problems.map((p) => `quiet period ${this.report.quietPeriods}: ${p}`));
      this.#o.log(`quiet period ${this.report.quietPeriods}: still wrong after ${this.#o.settleTimeoutMs} ms:\n  ${problems.join('\n  ')}`);
    }
  }

  #keepLogs(): void {
    if (!this.#o.logsDir) return;
    const dir = join(this.#o.logsDir, `quiet-${this.report.quietPeriods}`);
    mkdirSync(dir, { recursive: true });
    for (const { host } of this.#hosts) copyFileSync(host.logFile, join(dir, `${host.name}.log`));
    this.#o.log(`agent logs copied to ${dir}`);
  }

  async #check(): Promise<string[]> {
    const perHost = await Promise.all(this.#hosts.map((state) => this.#checkHost(state.host).catch((e: Error) => [`${state.host.name}: ${e.message}`])));
    return perHost.flat();
  }

  async #checkHost(host: LabHost): Promise<string[]> {
    const problems: string[] = [];
    const all = [...this.#sandboxes.values()];
    const remote = all.filter((s) => s.host !== host.name);

    const { endpoints } = await callAgent<{ endpoints: Array<{ name: string; ip: string; network: string }> }>(host, 'Endpoints', { network: NETWORK });
    const seen = endpoints.map((e) => `${e.name}@${e.ip}`);
    if (!sameSet(seen, all.map((s) => `${s.name}@${s.ip}`))) problems.push(`${host.name}: endpoints ${setDiff(seen, all.map((s) => `${s.name}@${s.ip}`))}`);
    const ips = endpoints.map((e) => e.ip);
    if (new Set(ips).size !== ips.length) problems.push(`${host.name}: duplicate IP among ${ips.join(',')}`);

    const network = await readNetworkState(`${host.netns}-n${this.#vni}`);
    const fdbMacs = network.fdb.filter((e) => e.mac !== FLOOD_MAC).map((e) => e.mac);
    if (!sameSet(fdbMacs, remote.map((s) => s.mac))) problems.push(`${host.name}: FDB ${setDiff(fdbMacs, remote.map((s) => s.mac))}`);
    const neighIps = network.neighbours.map((n) => n.ip);
    if (!sameSet(neighIps, remote.map((s) => s.ip))) problems.push(`${host.name}: neighbours ${setDiff(neighIps, remote.map((s) => s.ip))}`);

    const probe = this.#sandboxes.get(`probe-${host.name}`)!;
    const expectedDns = this.#expectedDns();
    const sandbox = await readSandboxState(probe.netns, [...expectedDns.keys()], { timeS: 2, tries: 2 });
    problems.push(...this.#checkDns(host, expectedDns, sandbox), ...this.#checkLb(host, sandbox));

    const doctor = await callAgent<{ findings: Array<{ subject: string; problem: string }> }>(host, 'Doctor', {});
    for (const f of doctor.findings) problems.push(`${host.name}: doctor: ${f.subject}: ${f.problem}`);
    return problems;
  }

  #backendsOf(service: string): string[] {
    return [...this.#sandboxes.values()].filter((s) => s.services.includes(service)).map((s) => s.ip);
  }

  /** Service names, tasks. names and the newest endpoint names, with what each must resolve to. */
  #expectedDns(): Map<string, string[]> {
    const expected = new Map<string, string[]>();
    for (const s of this.#services.values()) {
      expected.set(`${s.name}.`, [s.vip]);
      expected.set(`tasks.${s.name}.`, this.#backendsOf(s.name));
    }
    for (const s of [...this.#sandboxes.values()].slice(-3)) expected.set(`${s.name}.`, [s.ip]);
    return expected;
  }

  #checkDns(host: LabHost, expected: Map<string, string[]>, sandbox: SandboxState): string[] {
    const problems: string[] = [];
    for (const [name, want] of expected) {
      const got = sandbox.answers.get(name) ?? [];
      if (!sameSet(got, want)) problems.push(`${host.name}: DNS ${name} ${setDiff(got, want)}`);
    }
    return problems;
  }

  /** The probe's table: one chain per service holding exactly its live backends. */
  #checkLb(host: LabHost, sandbox: SandboxState): string[] {
    const chains = new Map<string, string[]>();
    for (const [name, addresses] of sandbox.lbChains) if (name.startsWith('svc_')) chains.set(name.slice(4), addresses);
    const problems: string[] = [];
    if (!sameSet([...chains.keys()], [...this.#services.keys()])) problems.push(`${host.name}: LB chains ${setDiff([...chains.keys()], [...this.#services.keys()])}`);
    for (const service of this.#services.keys()) {
      const got = chains.get(service);
      if (got && !sameSet(got, this.#backendsOf(service))) problems.push(`${host.name}: LB ${service} ${setDiff(got, this.#backendsOf(service))}`);
    }
    return problems;
  }
}
