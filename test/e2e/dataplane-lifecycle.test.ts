// Life cycle of networks and sandboxes on a real kernel: idempotent ensure
// that repairs drift, sandboxes created or adopted by path, resolv.conf,
// detach/destroy/remove leaving nothing behind, doctor's findings, and the
// data plane running inside a host namespace the way an agent does.
import test from 'ava';
import { execa } from 'execa';
import type { ResultPromise } from 'execa';
import { existsSync, readFileSync } from 'node:fs';
import type { EmulatedHost, EmulatedHosts } from '../../dataplane/testing/emulated-hosts.ts';
import type { DataplaneContext, NetworkSpec } from '../../dataplane/index.ts';
import type { Runner } from '../../dataplane/exec.ts';
import { egressPlane } from '../../dataplane/egress.ts';
import { createEmulatedHosts, pingFrom, randomPrefix } from '../../dataplane/testing/emulated-hosts.ts';
import {
  adoptSandbox, attachSandbox, createSandbox, destroySandbox, detachSandbox, doctor, ensureNetwork, removeNetwork, writeResolvConf,
} from '../../dataplane/index.ts';

let lab: EmulatedHosts;
let h1: EmulatedHost;
const sleepers: ResultPromise[] = [];
const DATAPLANE = new URL('../../dataplane/index.ts', import.meta.url).href;

const spec = (vni: number, third: number): NetworkSpec => ({ name: `net${vni}`, vni, subnet: `100.64.${third}.0/24`, gateway: `100.64.${third}.1`, vtep: h1.ip });

async function linkNames(netns: string): Promise<string[]> {
  const r = await execa('ip', ['-n', netns, '-j', 'link', 'show'], { reject: false });
  if (r.exitCode !== 0) throw new Error(r.stderr);
  return (JSON.parse(r.stdout) as Array<{ ifname: string }>).map((l) => l.ifname).sort();
}
async function namespaces(): Promise<string[]> {
  return (JSON.parse((await execa('ip', ['-j', 'netns', 'list'])).stdout || '[]') as Array<{ name: string }>).map((n) => n.name);
}
async function usable(netns: string): Promise<boolean> {
  return (await execa('ip', ['-n', netns, 'link', 'show', 'lo'], { reject: false })).exitCode === 0;
}

test.before(async () => {
  lab = await createEmulatedHosts({ prefix: randomPrefix('dpl'), hosts: 1 });
  h1 = lab.hosts[0]!;
});

test.after.always(async () => {
  for (const s of sleepers) s.kill('SIGKILL');
  await lab?.cleanup();
});

test('ensureNetwork is idempotent and repairs drift', async (t) => {
  const first = await ensureNetwork(h1.ctx, spec(6001, 61));
  t.true(first.changes.length > 0);
  t.deepEqual((await ensureNetwork(h1.ctx, spec(6001, 61))).changes, []);
  const ns = first.network.netns;
  await execa('ip', ['-n', ns, 'link', 'set', 'br0', 'mtu', '1280']);
  await execa('ip', ['-n', ns, 'addr', 'flush', 'dev', 'br0']);
  await execa('ip', ['-n', ns, 'link', 'set', 'vxlan0', 'down']);
  const repaired = await ensureNetwork(h1.ctx, spec(6001, 61));
  t.deepEqual(repaired.changes.sort(), ['added 100.64.61.1/24 to br0', 'set br0 mtu 1450 (was 1280)', 'set vxlan0 up'].sort());
  await execa('ip', ['-n', ns, 'link', 'del', 'vxlan0']);
  t.true((await ensureNetwork(h1.ctx, spec(6001, 61))).changes.some((c) => c.startsWith('created vxlan0')));
  t.deepEqual((await ensureNetwork(h1.ctx, spec(6001, 61))).changes, []);
});

test('a VXLAN device with the wrong parameters, or created inside the network namespace, is re-created', async (t) => {
  const { network } = await ensureNetwork(h1.ctx, spec(6002, 62));
  const ns = network.netns;
  await execa('ip', ['-n', ns, 'link', 'del', 'vxlan0']);
  // Learning on: the kind of device a hand fix might leave.
  await execa('nsenter', [`--net=/run/netns/${h1.netns}`, '--', 'ip', 'link', 'add', 'vxlan0', 'netns', ns, 'type', 'vxlan', 'id', '6002', 'local', h1.ip, 'dstport', '4789', 'proxy']);
  t.true((await ensureNetwork(h1.ctx, spec(6002, 62))).changes.some((c) => /deleted vxlan0 \(learning is on/.test(c)));
  // Created inside: its UDP socket would be in a namespace without an underlay.
  await execa('ip', ['-n', ns, 'link', 'del', 'vxlan0']);
  await execa('ip', ['-n', ns, 'link', 'add', 'vxlan0', 'type', 'vxlan', 'id', '6002', 'local', h1.ip, 'dstport', '4789', 'nolearning', 'proxy']);
  t.true((await ensureNetwork(h1.ctx, spec(6002, 62))).changes.some((c) => /UDP socket is inside/.test(c)));
  const vxlan = JSON.parse((await execa('ip', ['-n', ns, '-d', '-j', 'link', 'show', 'vxlan0'])).stdout)[0];
  t.is(vxlan.link_netnsid, 0);
  t.is(vxlan.master, 'br0');
});

test('removing a network removes its namespace and devices and frees its VNI', async (t) => {
  const { network } = await ensureNetwork(h1.ctx, spec(6003, 63));
  const { sandbox } = await createSandbox(h1.ctx, 'rm');
  const attached = await attachSandbox(h1.ctx, sandbox, network, { ip: '100.64.63.5', defaultRoute: true });
  t.deepEqual(await linkNames(network.netns), ['br0', attached.hostVeth, 'lo', 'vxlan0'].sort());
  t.true(await removeNetwork(h1.ctx, 6003));
  t.false((await namespaces()).includes(network.netns));
  t.false(await removeNetwork(h1.ctx, 6003));
  // The sandbox lost its end of the veth with it.
  t.deepEqual(await linkNames(sandbox.ref.kind === 'name' ? sandbox.ref.name : ''), ['lo']);
  // No VXLAN device survived in the host namespace or elsewhere: the VNI can be used again.
  const again = await ensureNetwork(h1.ctx, spec(6003, 63));
  t.true(again.changes.some((c) => c.startsWith('created vxlan0')));
  await removeNetwork(h1.ctx, 6003);
  await destroySandbox(h1.ctx, sandbox, []);
});

test('a sandbox joins two networks as eth0 and eth1, default route through the first; attach is idempotent; detach removes both ends', async (t) => {
  const a = (await ensureNetwork(h1.ctx, spec(6004, 64))).network;
  const b = (await ensureNetwork(h1.ctx, spec(6005, 65))).network;
  const { sandbox, created } = await createSandbox(h1.ctx, 'two');
  t.true(created);
  const name = sandbox.ref.kind === 'name' ? sandbox.ref.name : '';
  t.is(name, `${h1.netns}-stwo`);
  const ea = await attachSandbox(h1.ctx, sandbox, a, { ip: '100.64.64.7', defaultRoute: true });
  const eb = await attachSandbox(h1.ctx, sandbox, b, { ip: '100.64.65.7', defaultRoute: false });
  t.deepEqual([ea.ifname, eb.ifname], ['eth0', 'eth1']);
  t.deepEqual((await attachSandbox(h1.ctx, sandbox, a, { ip: '100.64.64.7', defaultRoute: true })).changes, []);
  const routes = JSON.parse((await execa('ip', ['-n', name, '-4', '-j', 'route', 'show', 'default'])).stdout) as Array<{ gateway: string; dev: string }>;
  t.deepEqual(routes.map((r) => `${r.gateway} ${r.dev}`), ['100.64.64.1 eth0']);
  t.true((await pingFrom(name, '100.64.64.1')).ok);
  t.true((await pingFrom(name, '100.64.65.1')).ok);
  // A changed address is applied in place.
  const moved = await attachSandbox(h1.ctx, sandbox, b, { ip: '100.64.65.8', defaultRoute: false });
  t.deepEqual(moved.changes.filter((c) => c.includes(' addr ')), [`${name}: addr del 100.64.65.7/24 dev eth1`, `${name}: addr add 100.64.65.8/24 dev eth1`]);
  t.true(await detachSandbox(h1.ctx, sandbox, 6005));
  t.false(await detachSandbox(h1.ctx, sandbox, 6005));
  t.deepEqual(await linkNames(name), ['eth0', 'lo']);
  t.false((await linkNames(b.netns)).includes(eb.hostVeth));
  await destroySandbox(h1.ctx, sandbox, [6004]);
  t.false((await namespaces()).includes(name));
  t.deepEqual(await linkNames(a.netns), ['br0', 'lo', 'vxlan0']);
});

test('a namespace adopted by path (a container) is attached, and on destroy only weft\'s interface goes', async (t) => {
  const net = (await ensureNetwork(h1.ctx, spec(6006, 66))).network;
  const path = await containerNamespace();
  const sandbox = await adoptSandbox(h1.ctx, path);
  t.false(sandbox.owned);
  const attached = await attachSandbox(h1.ctx, sandbox, net, { ip: '100.64.66.9', defaultRoute: true });
  const ping = await execa('nsenter', [`--net=${path}`, '--', 'ping', '-n', '-c', '1', '-W', '2', '100.64.66.1'], { reject: false });
  t.is(ping.exitCode, 0, ping.stdout + ping.stderr);
  await destroySandbox(h1.ctx, sandbox, [6006]);
  const left = JSON.parse((await execa('nsenter', [`--net=${path}`, '--', 'ip', '-j', 'link', 'show'])).stdout) as Array<{ ifname: string }>;
  t.deepEqual(left.map((l) => l.ifname), ['lo']);
  t.false((await linkNames(net.netns)).includes(attached.hostVeth));
  await t.throwsAsync(adoptSandbox(h1.ctx, '/proc/999999999/ns/net'), { message: /network namespace \/proc\/999999999\/ns\/net does not exist/ });
});

/** The data plane context of h1 with every command it spawns counted. */
function counted(): { ctx: DataplaneContext; commands: string[] } {
  const commands: string[] = [];
  const runner: Runner = (file, args, input) => {
    commands.push([file, ...args].join(' '));
    return h1.ctx.runner(file, args, input);
  };
  return { ctx: { ...h1.ctx, runner }, commands };
}

/** A process in a network namespace of its own, as a container runtime makes one: its /proc path once it is inside. */
async function containerNamespace(): Promise<string> {
  // unshare execs sh, which execs sleep: one pid, and "ready" is printed from inside the new namespace.
  const sleeper = execa('unshare', ['--net', '--', 'sh', '-c', 'echo ready; exec sleep 300'], { reject: false });
  sleepers.push(sleeper);
  await new Promise<void>((resolve, reject) => {
    const late = setTimeout(() => reject(new Error('unshare --net did not say "ready" within 60 s')), 60_000);
    sleeper.stdout?.once('data', () => { clearTimeout(late); resolve(); });
    void sleeper.then((r) => { clearTimeout(late); reject(new Error(`unshare exited: ${r.stderr}`)); });
  });
  return `/proc/${sleeper.pid}/ns/net`;
}

test('a network\'s first sandbox: the network takes three commands, the link two; a retry over a half-made link repairs it', async (t) => {
  const { ctx, commands } = counted();
  const made = await ensureNetwork(ctx, spec(6010, 71));
  const net = made.network;
  t.deepEqual(commands.map((c) => c.split(' ').slice(0, 3).join(' ')), ['ip -d -j', 'ip -batch -', `ip -n ${net.netns}`], 'the underlay\'s MTU, then one batch per namespace');
  t.true(made.changes.includes(`created namespace ${net.netns}`));
  t.deepEqual((await ensureNetwork(h1.ctx, spec(6010, 71))).changes, [], 'made as ensureNetwork wants it');
  const path = await containerNamespace();
  commands.length = 0;
  const sandbox = await adoptSandbox(ctx, path);
  t.deepEqual(commands.filter((c) => !c.startsWith('stat ')), [], 'adopting reads the file system only');
  commands.length = 0;
  const attached = await attachSandbox(ctx, sandbox, net, { ip: '100.64.71.9', ifname: 'eth0', defaultRoute: true });
  t.is(commands.length, 2, commands.join('\n'));
  const ping = await execa('nsenter', [`--net=${path}`, '--', 'ping', '-n', '-c', '1', '-W', '2', '100.64.71.1'], { reject: false });
  t.is(ping.exitCode, 0, ping.stdout + ping.stderr);
  const routes = JSON.parse((await execa('nsenter', [`--net=${path}`, '--', 'ip', '-4', '-j', 'route', 'show', 'default'])).stdout) as Array<{ gateway: string; dev: string }>;
  t.deepEqual(routes.map((r) => `${r.gateway} ${r.dev}`), ['100.64.71.1 eth0']);
  // Half made: the sandbox end lost its address and went down (an ADD that died halfway, retried).
  await execa('nsenter', [`--net=${path}`, '--', 'ip', 'addr', 'flush', 'dev', 'eth0']);
  await execa('nsenter', [`--net=${path}`, '--', 'ip', 'link', 'set', 'eth0', 'down']);
  const again = await attachSandbox(ctx, sandbox, net, { ip: '100.64.71.9', ifname: 'eth0', defaultRoute: true });
  t.is(again.hostVeth, attached.hostVeth);
  t.true(again.changes.some((c) => c.endsWith('addr add 100.64.71.9/24 dev eth0')), again.changes.join('\n'));
  t.is((await execa('nsenter', [`--net=${path}`, '--', 'ping', '-n', '-c', '1', '-W', '2', '100.64.71.1'], { reject: false })).exitCode, 0);
  // A name taken by an interface that is not weft's is refused by name, and nothing of weft's stays.
  const other = (await ensureNetwork(h1.ctx, spec(6011, 72))).network;
  await execa('nsenter', [`--net=${path}`, '--', 'ip', 'link', 'add', 'eth1', 'type', 'veth', 'peer', 'name', 'x1']);
  await t.throwsAsync(attachSandbox(ctx, sandbox, other, { ip: '100.64.72.9', ifname: 'eth1', defaultRoute: false }), { message: /already has an interface eth1 that is not weft's/ });
  t.deepEqual(await linkNames(other.netns), ['br0', 'lo', 'vxlan0']);
  await destroySandbox(h1.ctx, sandbox, [6010, 6011]);
  commands.length = 0;
  t.true(await removeNetwork(ctx, 6010));
  t.is(commands.length, 2, `the last sandbox gone, the network goes in two commands:\n${commands.join('\n')}`);
  t.false((await namespaces()).includes(net.netns));
  await removeNetwork(h1.ctx, 6011);
});

test('a sandbox\'s first leg on the gateway bridge takes two commands', async (t) => {
  const egressSpec = { subnet: '198.19.255.0/24', blocked: ['100.64.0.0/10'] };
  await egressPlane(h1.ctx, egressSpec).ensure({ noEgress: [] });
  const path = await containerNamespace();
  const { ctx, commands } = counted();
  const sandbox = await adoptSandbox(ctx, path);
  commands.length = 0;
  await egressPlane(ctx, egressSpec).attach(sandbox, '198.19.255.7', 1500, true, true);
  t.is(commands.length, 2, commands.join('\n'));
  const ping = await execa('nsenter', [`--net=${path}`, '--', 'ping', '-n', '-c', '1', '-W', '2', '198.19.255.1'], { reject: false });
  t.is(ping.exitCode, 0, ping.stdout + ping.stderr);
  const routes = JSON.parse((await execa('nsenter', [`--net=${path}`, '--', 'ip', '-4', '-j', 'route', 'show', 'default'])).stdout) as Array<{ gateway: string; dev: string }>;
  t.deepEqual(routes.map((r) => `${r.gateway} ${r.dev}`), ['198.19.255.1 egress0']);
  // Plugged again as new (the agent lost its record): the leg that is there is repaired, not doubled.
  commands.length = 0;
  await egressPlane(ctx, egressSpec).attach(sandbox, '198.19.255.7', 1500, true, true);
  t.true(commands.length > 2);
  const legs = JSON.parse((await execa('ip', ['-n', h1.netns, '-j', 'link', 'show', 'master', 'weft_gw'])).stdout) as Array<{ ifname: string }>;
  t.is(legs.length, 1);
});

test('resolv.conf of a named sandbox is what `ip netns exec` shows, and goes with the sandbox', async (t) => {
  const { sandbox } = await createSandbox(h1.ctx, 'dns');
  const name = sandbox.ref.kind === 'name' ? sandbox.ref.name : '';
  t.is(writeResolvConf(name, ['nameserver 100.64.67.1', 'options ndots:0']), 'written');
  t.is(writeResolvConf(name, ['nameserver 100.64.67.1', 'options ndots:0']), 'unchanged');
  const seen = await execa('ip', ['netns', 'exec', name, 'cat', '/etc/resolv.conf']);
  t.regex(seen.stdout, /^nameserver 100\.64\.67\.1$/m);
  t.true(readFileSync(`/etc/netns/${name}/resolv.conf`, 'utf8').includes('options ndots:0'));
  await destroySandbox(h1.ctx, sandbox, []);
  t.false(existsSync(`/etc/netns/${name}`));
});

test('doctor finds nothing on a healthy host and names each difference on a broken one', async (t) => {
  const net = (await ensureNetwork(h1.ctx, spec(6007, 68))).network;
  const { sandbox } = await createSandbox(h1.ctx, 'doc');
  const name = sandbox.ref.kind === 'name' ? sandbox.ref.name : '';
  await attachSandbox(h1.ctx, sandbox, net, { ip: '100.64.68.10', defaultRoute: true });
  const { reconcile } = await import('../../dataplane/index.ts');
  const endpoints = [{ vni: 6007, endpoints: [{ ip: '100.64.68.20', mac: '02:42:64:44:44:14', vtep: '198.18.0.2' }] }];
  await reconcile(h1.ctx, endpoints);
  const input = { networks: [spec(6007, 68)], endpoints, attachments: [{ sandbox: name, vni: 6007, spec: { ip: '100.64.68.10', defaultRoute: true } }] };
  // Other tests' networks exist on this host too; only ours is declared, so restrict to its subjects.
  const ours = (findings: Awaited<ReturnType<typeof doctor>>) => findings.filter((f) => !f.subject.startsWith('namespace '));
  t.deepEqual(ours(await doctor(h1.ctx, input)), []);
  await execa('ip', ['-n', net.netns, 'link', 'set', 'vxlan0', 'mtu', '1400']);
  await execa('ip', ['-n', net.netns, 'neigh', 'del', '100.64.68.20', 'dev', 'vxlan0']);
  await execa('ip', ['-n', name, 'route', 'del', 'default']);
  const problems = ours(await doctor(h1.ctx, input)).map((f) => f.problem);
  t.true(problems.includes('vxlan0 MTU is 1400, want 1450'), problems.join('\n'));
  t.true(problems.includes('neighbour entry 100.64.68.20 -> 02:42:64:44:44:14 is missing'), problems.join('\n'));
  t.true(problems.some((p) => p.startsWith('no default route via 100.64.68.1 dev eth0')), problems.join('\n'));
  t.true(problems.includes('br0 MTU is 1400, want 1450'), 'the bridge follows its smallest port');
  t.is(problems.length, 4, problems.join('\n'));
  const leftovers = (await doctor(h1.ctx, { networks: [] })).filter((f) => f.subject === `namespace ${net.netns}`);
  t.is(leftovers.length, 1);
});

// The agent runs inside its host's network namespace and calls ip directly.
// These run the data plane that way, in a child process, with no runner wrapper.
function childScript(body: string): string {
  return `import * as dp from ${JSON.stringify(DATAPLANE)};\nconst ctx = dp.dataplaneContext({ nsPrefix: process.env.PREFIX });\n${body}`;
}
async function runChild(launcher: string[], body: string): Promise<string> {
  const r = await execa(launcher[0]!, [...launcher.slice(1), process.execPath, '--disable-warning=ExperimentalWarning', '--input-type=module', '-e', childScript(body)],
    { reject: false, timeout: 120_000, env: { PREFIX: h1.netns } });
  if (r.exitCode !== 0) throw new Error(`child failed${r.timedOut ? ' (no exit within 120 s)' : ''}: ${r.stderr}`);
  return r.stdout;
}

test('run from inside the host namespace with nsenter, the namespaces it creates outlive the process', async (t) => {
  const out = await runChild(['nsenter', `--net=/run/netns/${h1.netns}`, '--'], `
    const { network } = await dp.ensureNetwork(ctx, { name: 'child', vni: 6008, subnet: '100.64.69.0/24', gateway: '100.64.69.1', vtep: '${h1.ip}' });
    console.log(JSON.stringify({ home: dp.checkNamespaceHome() ?? null, netns: network.netns, mtu: network.mtu }));`);
  const result = JSON.parse(out) as { home: unknown; netns: string; mtu: number };
  t.is(result.home, null);
  t.is(result.mtu, 1450);
  t.true(await usable(result.netns), 'the network namespace is visible after the creating process exited');
  t.true((await linkNames(result.netns)).includes('vxlan0'));
  t.true(await removeNetwork(h1.ctx, 6008));
});

test('trap: under `ip netns exec` the created namespace is private to the process; checkNamespaceHome says so', async (t) => {
  const out = await runChild(['ip', 'netns', 'exec', h1.netns], `
    const { network } = await dp.ensureNetwork(ctx, { name: 'trap', vni: 6009, subnet: '100.64.70.0/24', gateway: '100.64.70.1', vtep: '${h1.ip}' });
    console.log(JSON.stringify({ home: dp.checkNamespaceHome() ?? null, netns: network.netns }));`);
  const result = JSON.parse(out) as { home: { problem: string } | null; netns: string };
  t.regex(result.home?.problem ?? '', /slave/);
  // The name is listed (the file exists) but nothing can enter it any more.
  t.true((await namespaces()).includes(result.netns));
  t.false(await usable(result.netns));
  // ensureNetwork from a healthy process recovers the name.
  t.true((await ensureNetwork(h1.ctx, spec(6009, 70))).changes.includes(`created namespace ${result.netns}`));
  await removeNetwork(h1.ctx, 6009);
});
