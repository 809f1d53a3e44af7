// The lab: N emulated hosts on this machine. Each host is a network namespace
// with one veth (eth0, 198.18.0.K/15) into a bridge that lives in the lab's own
// switch namespace, so nothing of the machine's own networking is touched.
// Each host runs a real agent with its own data dir and API socket; h1 runs
// `weft init`, the others `weft join` through h1.
import { execFileSync, spawn } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync, closeSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { addUnderlayHosts, createUnderlaySwitch, removeNamespacesWithPrefix, setUnderlayCable, underlayAddress } from '../../dataplane/testing/underlay.ts';
import { AgentClient } from '../../agent/api/client.ts';
import { isProcessAlive } from '../../lib/process-alive.ts';
import { DEFAULT_PREFIX, validatePrefix } from './prefix.ts';

export { DEFAULT_PREFIX, validatePrefix };

export const LAB_ROOT = '/run/weft-lab';
export const REPO_BIN = fileURLToPath(new URL('../../bin/', import.meta.url));
// Lab agents start as installed ones do: through bin/weft, which runs Node with the
// agent's flags and the compile cache (without it every agent loads Node's type
// stripper: ~15 MB more RSS and a slower start).
const WEFT_LAUNCHER = join(REPO_BIN, 'weft');
/**
 * Joins in flight at once during `lab up` unless told otherwise (joinAll): one
 * per two cores, at most 4. A join is CPU work more than waiting: at 19
 * members the joiner spends ~2 CPU-s and each member ~0.3 CPU-s on it, and
 * one join at a time already keeps ~1.6 of 2 cores busy, so more at once
 * only queues them for the CPU and starves the members' failure detectors
 * (docs/lab.md, "Where `lab up` spends its time").
 */
export const DEFAULT_JOIN_CONCURRENCY = Math.max(1, Math.min(4, Math.floor(availableParallelism() / 2)));

export interface LabHost {
  name: string;      // h1..hN
  netns: string;     // <prefix>-hK
  ip: string;        // 198.18.0.K
  socket: string;
  dataDir: string;
  logFile: string;
  pid: number;
}

export interface LabState {
  prefix: string;
  mtu: number;
  hosts: LabHost[];
  token: string;
  /** The agents' --dns-upstream list (empty: the agents read /etc/resolv.conf). */
  dnsUpstreams?: string[];
  /** Config-file fields every agent starts with (agent/config.ts), kept for restarts. */
  agentConfig?: Record<string, unknown>;
}

export interface LabUpOptions {
  hosts: number;
  /** How many of the hosts form the cluster (default all); the rest run an agent that has not joined. */
  members?: number;
  prefix?: string;
  mtu?: number;
  progress?: (message: string) => void;
  logLevel?: string;
  /** Resolvers the agents forward outside names to (tests start one on the switch). */
  dnsUpstreams?: string[];
  /** Config-file fields for every agent, e.g. a short `tableReapSeconds` in a test. */
  agentConfig?: Record<string, unknown>;
  /** How many hosts join at once (default DEFAULT_JOIN_CONCURRENCY; 1: one after another). */
  joinConcurrency?: number;
}

export function labDir(prefix: string): string {
  return join(LAB_ROOT, prefix);
}

export function readLabState(prefix: string): LabState | undefined {
  const path = join(labDir(prefix), 'state.json');
  return existsSync(path) ? (JSON.parse(readFileSync(path, 'utf8')) as LabState) : undefined;
}

export async function labUp(options: LabUpOptions): Promise<LabState> {
  const prefix = validatePrefix(options.prefix ?? DEFAULT_PREFIX);
  const mtu = options.mtu ?? 1500;
  const say = options.progress ?? (() => undefined);
  if (!Number.isInteger(options.hosts) || options.hosts < 1 || options.hosts > 64) throw new Error('--hosts must be an integer from 1 to 64');
  if (!Number.isInteger(mtu) || mtu < 1280 || mtu > 9000) throw new Error('--mtu must be an integer from 1280 to 9000');
  const joinConcurrency = options.joinConcurrency ?? DEFAULT_JOIN_CONCURRENCY;
  if (!Number.isInteger(joinConcurrency) || joinConcurrency < 1 || joinConcurrency > 64) throw new Error('the join concurrency must be an integer from 1 to 64');
  await labDown(prefix); // a previous run may have crashed: start clean
  const dir = labDir(prefix);
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  const state: LabState = { prefix, mtu, hosts: [], token: '', dnsUpstreams: options.dnsUpstreams ?? [], agentConfig: options.agentConfig ?? {} };
  try {
    say(`creating underlay switch ${prefix}-sw (198.18.0.0/15, MTU ${mtu}) and ${options.hosts} host namespaces`);
    await createUnderlaySwitch(prefix, mtu);
    // Every namespace before any agent: agents starting take the CPU the `ip` commands would wait for.
    state.hosts = await createHosts(prefix, options.hosts, mtu);
    saveState(state);
    for (const host of state.hosts) {
      say(`host ${host.name}: namespace ${host.netns}, ${host.ip}; starting agent`);
      host.pid = startAgent(host, options.logLevel ?? 'info', state);
      saveState(state);
    }
    say('waiting for every agent to answer');
    // They all start at once on however many cores there are: the deadline grows with their number.
    await waitForAgents(state.hosts, 30_000 + 2_000 * state.hosts.length);
    const first = state.hosts[0]!;
    say(`${first.name}: weft init`);
    state.token = await withClient(first, async (c) => (await c.call<{ token: string }>('Init', { defaultAddrPool: '100.64.0.0/10' })).token);
    saveState(state);
    const members = options.members ?? options.hosts;
    await joinAll(state.hosts.slice(1, members), first, state.token, joinConcurrency, say);
    say('waiting for every host to see every other host');
    await waitForFullMesh({ ...state, hosts: state.hosts.slice(0, members) });
    return state;
  } catch (error) {
    const logs = state.hosts.map((h) => `--- ${h.name} (${h.logFile}) ---\n${tail(h.logFile)}`).join('\n');
    throw new Error(`lab up failed: ${(error as Error).message}\n${logs}`);
  }
}

async function createHosts(prefix: string, count: number, mtu: number): Promise<LabHost[]> {
  const dir = labDir(prefix);
  const wanted = Array.from({ length: count }, (_, index) => ({ name: `h${index + 1}`, address: underlayAddress(index) }));
  const namespaces = await addUnderlayHosts(prefix, wanted, mtu);
  return wanted.map(({ name, address }, index) => ({
    name, netns: namespaces[index]!, ip: address, socket: join(dir, `${name}.sock`), dataDir: join(dir, name), logFile: join(dir, `${name}.log`), pid: 0,
  }));
}

/**
 * Joins the hosts through `seed`, `concurrency` at a time (the seed admits
 * side by side joins: agent/cluster/admission-server.ts, admit).
 */
async function joinAll(hosts: LabHost[], seed: LabHost, token: string, concurrency: number, say: (message: string) => void): Promise<void> {
  const queue = [...hosts];
  let failed = false; // after one join fails, the other workers take no new host (lab up is failing)
  const worker = async (): Promise<void> => {
    for (let host = queue.shift(); host && !failed; host = queue.shift()) {
      say(`${host.name}: weft join ${seed.ip}`);
      await withClient(host, (c) => c.call('Join', { token, address: `${seed.ip}:2377` })).catch((error: unknown) => {
        failed = true;
        throw error;
      });
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, queue.length) }, worker));
}

function startAgent(host: LabHost, logLevel: string, lab: Pick<LabState, 'dnsUpstreams' | 'agentConfig'>): number {
  const log = openSync(host.logFile, 'a');
  const configFile = join(dirname(host.logFile), `${host.name}.config.json`);
  writeFileSync(configFile, JSON.stringify(lab.agentConfig ?? {}));
  // nsenter enters only the network namespace. `ip netns exec` would also give
  // the agent a private mount namespace, hiding the namespaces it creates
  // under /run/netns from every other process.
  const args = [`--net=/run/netns/${host.netns}`, WEFT_LAUNCHER, '--api-socket', host.socket, 'agent',
    '--config', configFile, '--data-dir', host.dataDir, '--advertise-addr', host.ip, '--listen-addr', `${host.ip}:2377`, '--name', host.name, '--log-level', logLevel,
    // Namespace names are machine-wide: each host's agent names its own under the lab's prefix, so `lab down` finds them.
    '--ns-prefix', host.netns,
    // Lab addresses stay inside 198.18.0.0/15; each host's egress bridge is local to its namespace.
    '--egress-subnet', '198.19.255.0/24',
    // Every dockerd reads /run/docker/plugins: each lab host's agent serves its plugin in its own dir.
    '--docker-plugin-dir', dockerPluginDir(host),
    // The host's dockerd (test/helpers/lab-docker.ts) listens here; container names are read from it.
    '--docker-socket', join(host.dataDir, 'docker', 'docker.sock'),
    ...(lab.dnsUpstreams ?? []).flatMap((u) => ['--dns-upstream', u])];
  // nsenter execs bin/weft in place (no fork for a network namespace), and bin/weft execs Node: this pid is the agent's.
  const child = spawn('nsenter', args, { detached: true, stdio: ['ignore', log, log] });
  child.unref();
  closeSync(log);
  if (!child.pid) throw new Error(`could not start the agent of ${host.name}`);
  return child.pid;
}

/** Where a lab host's agent serves the Docker plugin (bind it over /run/docker/plugins for that host's dockerd). */
export function dockerPluginDir(host: Pick<LabHost, 'dataDir'>): string {
  return join(host.dataDir, 'docker-plugins');
}

/** One agent API client for `use`, closed afterwards. */
export async function withClient<T>(host: LabHost, use: (c: AgentClient) => Promise<T>): Promise<T> {
  const client = new AgentClient(host.socket);
  try {
    return await use(client);
  } finally {
    client.close();
  }
}

/**
 * Polls `check` until it holds. A failing check is retried (the agent may not
 * listen yet); `hopeless` names a reason to stop at once instead of waiting
 * out the deadline.
 */
async function waitFor(what: string, timeoutMs: number, check: () => Promise<boolean>, hopeless: () => string | undefined = () => undefined): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const reason = hopeless();
    if (reason !== undefined) throw new Error(`gave up waiting for ${what}: ${reason}`);
    if (await check().catch(() => false)) return;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`timed out after ${timeoutMs / 1000}s waiting for ${what}`);
}

/** Waits for the agent to answer; stops when it exits or `signal` aborts (another agent failed). */
async function waitForAgent(host: LabHost, timeoutMs = 30_000, signal?: AbortSignal): Promise<void> {
  const hopeless = (): string | undefined => {
    if (!isProcessAlive(host.pid)) return `the agent of ${host.name} exited (its log: ${host.logFile})`;
    return signal?.aborted ? 'another agent failed' : undefined;
  };
  await waitFor(`the agent of ${host.name} to answer on ${host.socket}`, timeoutMs, async () => {
    await withClient(host, (c) => c.call('Status'));
    return true;
  }, hopeless);
}

/** Waits for every agent; the first to fail stops the others' waits. */
async function waitForAgents(hosts: readonly LabHost[], timeoutMs: number): Promise<void> {
  const failed = new AbortController();
  await Promise.all(hosts.map((host) => waitForAgent(host, timeoutMs, failed.signal).catch((error: unknown) => {
    failed.abort();
    throw error;
  })));
}

export async function waitForFullMesh(state: LabState, timeoutMs = 60_000): Promise<void> {
  const expected = state.hosts.length;
  await waitFor(`all ${expected} hosts to list each other as connected members`, timeoutMs, async () => {
    for (const host of state.hosts) {
      const reply = await withClient(host, (c) => c.call<{ members: Array<{ state: string; connected: boolean }> }>('Members'));
      if (reply.members.filter((m) => m.state === 'alive' && m.connected).length !== expected) return false;
    }
    return true;
  });
}

function saveState(state: LabState): void {
  writeFileSync(join(labDir(state.prefix), 'state.json'), JSON.stringify(state, null, 2));
}

function tail(path: string, lines = 15): string {
  try {
    return readFileSync(path, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** Removes everything a lab with this prefix made: agents, namespaces, files. Safe to run twice. */
export async function labDown(prefixInput: string = DEFAULT_PREFIX): Promise<void> {
  const prefix = validatePrefix(prefixInput);
  const state = readLabState(prefix);
  for (const host of state?.hosts ?? []) {
    if (host.pid > 0 && isProcessAlive(host.pid)) process.kill(host.pid, 'SIGTERM');
  }
  const deadline = Date.now() + 5_000;
  while ((state?.hosts ?? []).some((h) => h.pid > 0 && isProcessAlive(h.pid)) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  // Whatever is still running in a namespace (a hung agent, a test's sandbox process) is killed with it.
  await removeNamespacesWithPrefix(prefix);
  unmountUnder(labDir(prefix));
  rmSync(labDir(prefix), { recursive: true, force: true });
}

/**
 * Detaches whatever is still mounted inside the lab's directory: a lab
 * host's dockerd mounts its containers' namespaces under its root there and
 * unmounts them when it stops, but not when it was killed mid-test, and a
 * mount point cannot be removed.
 */
function unmountUnder(dir: string): void {
  const points = readFileSync('/proc/self/mounts', 'utf8').split('\n').map((line) => line.split(' ')[1] ?? '')
    .filter((point) => point.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length); // the innermost first
  for (const point of points) {
    try {
      execFileSync('umount', ['--lazy', point], { stdio: 'ignore', timeout: 10_000 });
    } catch {
      // Gone already (an outer one took it along), or not ours to detach: rmSync says if it matters.
    }
  }
}

export function labHost(prefix: string, name: string): LabHost {
  const state = readLabState(validatePrefix(prefix));
  if (!state) throw new Error(`no lab "${prefix}" is up; start one with \`weft lab up\``);
  const host = state.hosts.find((h) => h.name === name);
  if (!host) throw new Error(`lab "${prefix}" has no host ${name}; it has ${state.hosts.map((h) => h.name).join(', ')}`);
  return host;
}

/** Restarts one host's agent (after a kill in a test, say), keeping its data dir. */
export function restartAgent(prefix: string, name: string, logLevel = 'info'): LabHost {
  const state = readLabState(prefix)!;
  const host = labHost(prefix, name);
  host.pid = startAgent(host, logLevel, state);
  state.hosts = state.hosts.map((h) => (h.name === name ? host : h));
  saveState(state);
  return host;
}

/** One agent API call on a lab host (tests and benchmarks). */
export function callAgent<T>(host: LabHost, method: string, request: object = {}): Promise<T> {
  return withClient(host, (c) => c.call<T>(method, request));
}

export { waitForAgent, withClient as withLabClient };

/** Cuts (up = false) or restores a host's underlay link: its veth end on the lab switch goes down or up. */
export async function setUnderlayLink(prefix: string, name: string, up: boolean): Promise<void> {
  labHost(prefix, name);
  await setUnderlayCable(validatePrefix(prefix), name, up);
}
