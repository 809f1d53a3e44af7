// weft's Docker plugin against a real dockerd per lab host (test/helpers/lab-docker.ts).
// Both dockerds run with `--dns <the host's gateway address>`, so Docker's
// resolver (127.0.0.11) forwards the names it does not know to weft's.
import test from 'ava';
import { execa } from 'execa';
import { existsSync, readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { labUp, labDown, restartAgent, callAgent, waitForAgent, type LabHost, type LabState } from '../../deploy/lab/lab.ts';
import { eventually, uniquePrefix, weftOn } from '../helpers/weft-cli.ts';
import { startLabDocker, stopLabDocker, restartLabDocker, dockerOn, importBusybox, type LabDocker } from '../helpers/lab-docker.ts';

/** The lab agents' --egress-subnet gateway: weft's resolver as containers reach it. */
const WEFT_DNS = '198.19.255.1';
const prefix = uniquePrefix('d');
let lab: LabState;
const dockers: LabDocker[] = [];
let image = '';
let blue: { subnet: string; gateway: string; vni: number };

interface Endpoint { name: string; ip: string; network: string; node: string; services: string[] }

test.before(async () => {
  lab = await labUp({ hosts: 2, prefix });
  for (const host of lab.hosts) dockers.push(await startLabDocker(host, ['--dns', WEFT_DNS]));
  for (const name of ['blue', 'red']) {
    const created = await weftOn(lab.hosts[0]!, ['network', 'create', name]);
    if (created.exitCode !== 0) throw new Error(created.stderr);
  }
  blue = JSON.parse((await weftOn(lab.hosts[0]!, ['network', 'inspect', 'blue'])).stdout) as typeof blue;
  for (const docker of dockers) image = await importBusybox(docker);
});

test.after.always(async () => {
  for (const docker of dockers) await stopLabDocker(docker);
  await labDown(prefix);
});

const h1 = (): LabDocker => dockers[0]!;
const h2 = (): LabDocker => dockers[1]!;
const create = (docker: LabDocker, ...args: string[]) => dockerOn(docker, ['network', 'create', '-d', 'weft', '--ipam-driver', 'weft', ...args]);
const exec = (docker: LabDocker, container: string, script: string) => dockerOn(docker, ['exec', container, 'sh', '-c', script]);

async function dockerNetwork(name: string): Promise<void> {
  const subnet = (JSON.parse((await weftOn(lab.hosts[0]!, ['network', 'inspect', name])).stdout) as { subnet: string }).subnet;
  for (const docker of dockers) {
    const r = await create(docker, '--subnet', subnet, name);
    if (r.exitCode !== 0) throw new Error(String(r.stderr));
  }
}

async function endpoints(host: LabHost): Promise<Endpoint[]> {
  return JSON.parse((await weftOn(host, ['endpoints', '--json'])).stdout) as Endpoint[];
}

/** The named endpoint once every host given lists it (hosts learn a network's endpoints once they are on it). */
function endpointNamed(name: string, network = 'blue', hosts = lab.hosts): Promise<Endpoint> {
  return eventually(`endpoint ${name} on ${hosts.map((h) => h.name).join(', ')}`, async () => {
    const lists = await Promise.all(hosts.map((h) => endpoints(h)));
    const found = lists.map((list) => list.find((e) => e.name === name && e.network === network));
    return found.every((e) => e !== undefined) ? found[0] : undefined;
  }, 60_000);
}

/** What the agent holds for Docker, whether those namespaces still exist, and what its log says of them. */
function leakReport(host: LabHost): string {
  const state = pluginState(host);
  const ids = Object.keys(state.endpoints);
  const namespaces = Object.values(state.endpoints).map((e) => `${String((e as { sandboxKey: string }).sandboxKey)}: ${existsSync(String((e as { sandboxKey: string }).sandboxKey)) ? 'exists' : 'gone'}`);
  const lines = readFileSync(host.logFile, 'utf8').split('\n').filter((l) => ids.some((id) => l.includes(id)) || /docker|container/.test(l)).slice(-15);
  return `${JSON.stringify(state)}\nnamespaces: ${namespaces.join(', ')}\nagent log:\n${lines.join('\n')}`;
}

/** Why a container did not come back after a dockerd restart: its state, dockerd's log and the agent's. */
async function restartReport(docker: LabDocker): Promise<string> {
  const state = await dockerOn(docker, ['inspect', '--format', '{{json .State}}', 'c5']);
  const tail = (file: string, pattern: RegExp) => existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter((l) => pattern.test(l)).slice(-25).join('\n') : `${file} is gone`;
  return `c5's state: ${String(state.stdout || state.stderr)}\ndockerd's log:\n${tail(docker.log, /level=(warn|error)|c5|plugin|weft/i)}\n${leakReport(docker.host)}`;
}

function pluginState(host: LabHost): { addresses: string[]; endpoints: Record<string, unknown> } {
  return JSON.parse(readFileSync(join(host.dataDir, 'cluster', 'docker-plugin.json'), 'utf8')) as { addresses: string[]; endpoints: Record<string, unknown> };
}

/** Nothing of Docker's left on the host: no recorded address or endpoint, no waiting link, doctor clean. */
async function assertReleased(t: { is: (a: unknown, b: unknown, m?: string) => void; deepEqual: (a: unknown, b: unknown, m?: string) => void }, host: LabHost): Promise<void> {
  await eventually(`${host.name} released every Docker address`, async () => {
    const state = pluginState(host);
    return state.addresses.length === 0 && Object.keys(state.endpoints).length === 0;
  }, 60_000);
  const links = await execa('ip', ['-n', host.netns, '-o', 'link', 'show'], { reject: false });
  t.deepEqual(String(links.stdout).split('\n').filter((l) => / wd[0-9a-f]{12}[@:]/.test(l)), [], `${host.name}: no link left waiting for dockerd`);
  const doctor = await eventually(`${host.name}: weft doctor clean`, async () => {
    const r = await weftOn(host, ['doctor']);
    return r.exitCode === 0 ? r : undefined;
  }, 60_000);
  t.is(doctor.exitCode, 0);
}

test.serial('a Docker network on a weft network\'s subnet takes that subnet; rm removes only Docker\'s view', async (t) => {
  const r = await create(h1(), '--subnet', blue.subnet, 'blue');
  t.is(r.exitCode, 0, String(r.stderr));
  const [inspected] = JSON.parse(String((await dockerOn(h1(), ['network', 'inspect', 'blue'])).stdout)) as Array<{ IPAM: { Config: Array<{ Subnet: string }> } }>;
  t.deepEqual(inspected?.IPAM.Config.map((c) => c.Subnet), [blue.subnet]);
  t.is((await dockerOn(h1(), ['network', 'rm', 'blue'])).exitCode, 0);
  t.is((await weftOn(lab.hosts[0]!, ['network', 'inspect', 'blue'])).exitCode, 0, 'the weft network stays');
});

test.serial('what weft cannot honour is refused with a clear error', async (t) => {
  t.regex(String((await create(h1(), 'nosubnet')).stderr), /give the weft network's subnet with --subnet/);
  t.regex(String((await create(h1(), '--subnet', '10.99.0.0/24', 'other')).stderr), /no weft network has subnet 10\.99\.0\.0\/24/);
  t.regex(String((await create(h1(), '--subnet', blue.subnet, '--internal', 'b2')).stderr), /is not internal: drop --internal/);
  t.regex(String((await create(h1(), '--subnet', blue.subnet, '-o', `vni=${blue.vni + 1}`, 'b3')).stderr), new RegExp(`conflicts with weft network "blue", which has VNI ${blue.vni}`));
  t.regex(String((await create(h1(), '--subnet', blue.subnet, '-o', 'color=red', 'b4')).stderr), /unknown -o option "color"/);
  const wrongGateway = blue.gateway.replace(/\.\d+$/, '.9');
  t.regex(String((await create(h1(), '--subnet', blue.subnet, '--gateway', wrongGateway, 'b5')).stderr), new RegExp(`--gateway ${wrongGateway} conflicts with weft network "blue", whose gateway is ${blue.gateway}`));
  t.is((await create(h1(), '--subnet', blue.subnet, '--gateway', blue.gateway, 'b6')).exitCode, 0, 'its own gateway is fine');
  t.is((await dockerOn(h1(), ['network', 'rm', 'b6'])).exitCode, 0);
  const networks = String((await dockerOn(h1(), ['network', 'ls', '--format', '{{.Name}}'])).stdout).split('\n');
  t.false(networks.some((n) => /^(nosubnet|other|b2|b3|b4|b5)$/.test(n)), 'none was created');
});

test.serial('containers on two hosts reach and resolve each other, weft sandboxes and a weft service by its VIP', async (t) => {
  await dockerNetwork('blue');
  const service = await weftOn(lab.hosts[0]!, ['service', 'create', 'web', '--network', 'blue', '--port', '80/tcp']);
  t.is(service.exitCode, 0, service.stderr);
  await callAgent(lab.hosts[1]!, 'SandboxCreate', { networks: ['blue'], name: 'web1', aliases: [], netns: '', services: ['web'], command: ['socat', 'TCP-LISTEN:80,fork,reuseaddr', 'SYSTEM:echo web1'] });
  for (const [docker, name] of [[h1(), 'c1'], [h2(), 'c2']] as const) {
    const r = await dockerOn(docker, ['run', '-d', '--name', name, '--network', 'blue', image, 'sleep', '3600']);
    t.is(r.exitCode, 0, String(r.stderr));
  }
  const c1 = await endpointNamed('c1');
  const c2 = await endpointNamed('c2');
  t.is(c1.node, 'h1');
  t.is(c2.node, 'h2');
  t.true(c1.ip.startsWith(blue.subnet.replace(/\.0\/\d+$/, '.')), `c1's address ${c1.ip} is blue's`);
  // Across hosts, by name: Docker's resolver knows only its own host's containers and forwards c2 to weft.
  await eventually('c1 pings c2 by name', async () => (await exec(h1(), 'c1', 'ping -c 1 -W 2 c2')).exitCode === 0, 60_000);
  await eventually('c2 pings c1 by name', async () => (await exec(h2(), 'c2', 'ping -c 1 -W 2 c1')).exitCode === 0, 60_000);
  const looked = await exec(h1(), 'c1', 'nslookup web1; nslookup web');
  const vip = (JSON.parse((await weftOn(lab.hosts[0]!, ['service', 'inspect', 'web'])).stdout) as { vip: string }).vip;
  const web1 = await endpointNamed('web1');
  t.regex(String(looked.stdout), new RegExp(`Address: ${web1.ip.replaceAll('.', '\\.')}`), 'a weft sandbox by name');
  t.regex(String(looked.stdout), new RegExp(`Address: ${vip.replaceAll('.', '\\.')}`), 'a weft service by name');
  const answer = await eventually('c1 reaches the service through its VIP', async () => {
    const r = await exec(h1(), 'c1', 'echo | nc -w 3 web 80');
    return String(r.stdout).trim() === 'web1' ? r : undefined;
  }, 60_000);
  t.is(String(answer.stdout).trim(), 'web1');
});

test.serial('a container on another weft network reaches its own network only', async (t) => {
  await dockerNetwork('red');
  t.is((await dockerOn(h2(), ['run', '-d', '--name', 'c3', '--network', 'red', image, 'sleep', '3600'])).exitCode, 0);
  await endpointNamed('c3', 'red', [lab.hosts[1]!]);
  const c2 = await endpointNamed('c2');
  const c1 = await endpointNamed('c1');
  const script = `until ping -c 1 -W 2 c3; do sleep 1; done; echo reached-c3; ping -c 1 -W 2 ${c2.ip} || ping -c 1 -W 2 ${c1.ip} || echo isolated`;
  const r = await dockerOn(h1(), ['run', '--rm', '--network', 'red', image, 'timeout', '60', 'sh', '-c', script]);
  t.is(r.exitCode, 0, String(r.stderr));
  t.regex(String(r.stdout), /reached-c3/);
  t.regex(String(r.stdout), /isolated/);
});

test.serial('docker network connect --driver-opt makes a container a named backend of a weft service; disconnect undoes it', async (t) => {
  const connected = await dockerOn(h2(), ['network', 'connect', '--driver-opt', 'weft.services=web', '--driver-opt', 'weft.name=web2', 'blue', 'c3']);
  t.is(connected.exitCode, 0, String(connected.stderr));
  const web2 = await endpointNamed('web2');
  t.deepEqual(web2.services, ['web']);
  const tasks = await eventually('tasks.web lists the container', async () => {
    const r = await exec(h1(), 'c1', 'nslookup tasks.web');
    return String(r.stdout).includes(`Address: ${web2.ip}`) ? r : undefined;
  }, 60_000);
  t.truthy(tasks);
  const refused = await dockerOn(h2(), ['network', 'connect', '--driver-opt', 'weft.services=nosuch', 'blue', 'c1x']);
  t.not(refused.exitCode, 0);
  t.is((await dockerOn(h2(), ['network', 'disconnect', 'blue', 'c3'])).exitCode, 0);
  await eventually('web2 gone from every host', async () => (await Promise.all(lab.hosts.map((h) => endpoints(h)))).every((list) => !list.some((e) => e.name === 'web2')), 60_000);
  t.truthy(await endpointNamed('c3', 'red', [lab.hosts[1]!]), 'its other network stays');
});

test.serial('rm -f and network rm release every address, link and entry', async (t) => {
  for (const [docker, names] of [[h1(), ['c1']], [h2(), ['c2', 'c3']]] as const) {
    t.is((await dockerOn(docker, ['rm', '-f', ...names])).exitCode, 0);
  }
  for (const docker of dockers) t.is((await dockerOn(docker, ['network', 'rm', 'red'])).exitCode, 0);
  for (const host of lab.hosts) await assertReleased(t, host);
  // On every host, also one that left a network (it forgets that network's endpoints then).
  const left = await eventually('no host lists a removed container', async () => {
    const named = (await Promise.all(lab.hosts.map((h) => endpoints(h)))).flat().filter((e) => /^c\d$/.test(e.name));
    return named.length === 0 ? named : undefined;
  }, 60_000);
  t.deepEqual(left, []);
});

test.serial('a dockerd restart stops its containers and releases their addresses; a restarted container attaches again', async (t) => {
  // The wait below may take up to 5 min on a shared machine: longer than ava's 5-minute window with no
  // test finishing, which would end the file with the test "pending" and without the report below.
  t.timeout(8 * 60_000);
  t.is((await dockerOn(h2(), ['run', '-d', '--name', 'c5', '--restart', 'always', '--network', 'blue', image, 'sleep', '3600'])).exitCode, 0);
  const before = await endpointNamed('c5', 'blue', [lab.hosts[1]!]); // h1 left blue with its last container
  const restartedAt = Date.now();
  dockers[1] = await restartLabDocker(h2());
  const upAt = Date.now();
  // --restart always: the new dockerd starts it again, with a new endpoint and address.
  const after = await eventually('c5 attached again', async () => {
    const found = (await endpoints(lab.hosts[1]!)).find((e) => e.name === 'c5');
    return found && (await exec(h2(), 'c5', 'ip -4 addr show eth0')).exitCode === 0 ? found : undefined;
  }, 300_000).catch(async (error: unknown) => { // the container's start and its adoption, on a shared machine
    throw new Error(`${(error as Error).message}\n${await restartReport(h2())}`);
  });
  t.is(after.node, 'h2');
  t.log(`dockerd restarted in ${((upAt - restartedAt) / 1000).toFixed(1)} s; c5 attached ${((Date.now() - upAt) / 1000).toFixed(1)} s later`);
  t.log(`c5 had ${before.ip}, has ${after.ip} after the restart`);
  t.is(pluginState(lab.hosts[1]!).addresses.length, 1, 'only the running container holds an address');
  t.is((await dockerOn(h2(), ['rm', '-f', 'c5'])).exitCode, 0);
  await assertReleased(t, lab.hosts[1]!);
});

test.serial('a container dockerd cannot name yet is attached at once and gets its name when dockerd answers', async (t) => {
  // dockerd's API out of the agent's reach (as while a restarting dockerd restores its containers).
  const away = `${h2().socket}.away`;
  renameSync(h2().socket, away);
  let restored = false;
  const restore = (): void => {
    if (!restored) renameSync(away, h2().socket);
    restored = true;
  };
  t.teardown(restore);
  const awayDocker = { ...h2(), socket: away };
  t.is((await dockerOn(awayDocker, ['run', '-d', '--name', 'c6', '--network', 'blue', image, 'sleep', '3600'])).exitCode, 0);
  const ip = String((await dockerOn(awayDocker, ['inspect', '--format', '{{(index .NetworkSettings.Networks "blue").IPAddress}}', 'c6'])).stdout).trim();
  const unnamed = await eventually('c6 attached without a name', async () => (await endpoints(lab.hosts[1]!)).find((e) => e.ip === ip), 60_000);
  t.is(unnamed.name, '', 'attached before dockerd could name it');
  restore();
  const named = await endpointNamed('c6', 'blue', [lab.hosts[1]!]);
  t.is(named.ip, ip, 'the same endpoint, now named');
  t.is((await dockerOn(h2(), ['rm', '-f', 'c6'])).exitCode, 0);
  await assertReleased(t, lab.hosts[1]!);
});

// A container removed while the agent is down is released by the sweep once the agent is back
// (its namespace file is gone). It leaked once in stop 20 under load (cause not found); the sweep
// was reworked in stop 21 and no run has leaked since. On failure the message shows what was held.
test.serial('with the agent down Docker gets a clear error; after the restart a container removed meanwhile is released and containers start again', async (t) => {
  const host = lab.hosts[0]!;
  t.is((await dockerOn(h1(), ['run', '-d', '--name', 'c4', '--network', 'blue', image, 'sleep', '3600'])).exitCode, 0);
  await endpointNamed('c4', 'blue', [lab.hosts[0]!]); // the only host on blue now
  process.kill(host.pid, 'SIGKILL');
  await eventually('the agent is gone', async () => !existsSync(`/proc/${host.pid}`));
  const refused = await dockerOn(h1(), ['run', '--rm', '--network', 'blue', image, 'sh', '-c', 'exit 0']);
  t.not(refused.exitCode, 0);
  t.regex(String(refused.stderr), /weft/, 'Docker names the weft plugin');
  t.log('docker run with the agent down:', String(refused.stderr).trim());
  t.is((await dockerOn(h1(), ['rm', '-f', 'c4'])).exitCode, 0, 'Docker removes the container without the plugin');
  const restarted = restartAgent(prefix, host.name);
  lab.hosts[0] = restarted;
  await waitForAgent(restarted);
  const released = await eventually('c4 released', async () => {
    const state = pluginState(restarted);
    return state.addresses.length === 0 && Object.keys(state.endpoints).length === 0;
  }, 120_000).catch(() => false);
  t.true(released, `the container removed while the agent was down is released; held: ${released ? '' : leakReport(restarted)}`);
  const again = await dockerOn(h1(), ['run', '--rm', '--network', 'blue', image, 'sh', '-c', 'exit 0']);
  t.is(again.exitCode, 0, String(again.stderr));
});
