// Services end to end on a 3-host lab: the embedded resolver answers from
// inside sandboxes through their standard resolv.conf, the VIP spreads TCP
// connections over backends on three hosts, and the live backend set (DNS and
// load balancer alike) follows health checks and host failures.
import test from 'ava';
import { execa } from 'execa';
import { labUp, labDown, restartAgent, callAgent, type LabState, type LabHost } from '../../deploy/lab/lab.ts';
import { weftOn, uniquePrefix, eventually } from '../helpers/weft-cli.ts';

const prefix = uniquePrefix('v');
/** The first upstream is an address nobody has: the resolver must fail over to the second. */
const SILENT_UPSTREAM = '198.18.200.1';
const UPSTREAM = '198.18.200.53';
const upstreamNs = `${prefix}-up`;
const NFT = '/usr/sbin/nft';
let lab: LabState;

interface SandboxInfo { id: string; netns: string; endpoints: { ip: string; name: string }[] }

function inSandbox(netns: string, command: string[], timeout = 30_000) {
  return execa('ip', ['netns', 'exec', netns, ...command], { reject: false, timeout });
}

async function dig(netns: string, ...args: string[]): Promise<string[]> {
  const r = await inSandbox(netns, ['dig', '+short', '+time=3', '+tries=1', ...args]);
  return String(r.stdout).split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith(';'));
}

async function digStatus(netns: string, ...args: string[]): Promise<{ status: string; answers: number }> {
  const r = await inSandbox(netns, ['dig', '+time=3', '+tries=1', ...args]);
  const out = String(r.stdout);
  return { status: /status: (\w+)/.exec(out)?.[1] ?? `no reply: ${out}${String(r.stderr)}`, answers: Number(/ANSWER: (\d+)/.exec(out)?.[1] ?? -1) };
}

/** A backend: answers its name on port 80 (any address, so the health check reaches it too). */
async function backend(host: LabHost, network: string, name: string, service: string): Promise<SandboxInfo> {
  return callAgent<SandboxInfo>(host, 'SandboxCreate', {
    networks: [network], name, aliases: [], netns: '', services: [service],
    command: ['socat', 'TCP-LISTEN:80,fork,reuseaddr', `SYSTEM:echo ${name}`],
  });
}

async function sandbox(host: LabHost, network: string, name: string): Promise<SandboxInfo> {
  return callAgent<SandboxInfo>(host, 'SandboxCreate', { networks: [network], name, aliases: [], netns: '', services: [], command: ['sleep', '3600'] });
}

/** n connections to ip:80 from the sandbox, one after another; the answers counted by backend name. */
async function requests(netns: string, ip: string, n: number): Promise<Map<string, number>> {
  const script = `for i in $(seq ${n}); do socat -T 2 - TCP:${ip}:80,connect-timeout=2 </dev/null || echo FAILED; done`;
  const r = await inSandbox(netns, ['sh', '-c', script], 120_000);
  const counts = new Map<string, number>();
  for (const line of String(r.stdout).split('\n').filter((l) => l !== '')) counts.set(line, (counts.get(line) ?? 0) + 1);
  return counts;
}

async function startUpstream(): Promise<void> {
  const sw = `${prefix}-sw`;
  await execa('ip', ['netns', 'add', upstreamNs]);
  await execa('ip', ['-n', sw, 'link', 'add', `${prefix}up`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', upstreamNs]);
  await execa('ip', ['-n', sw, 'link', 'set', `${prefix}up`, 'master', 'br0', 'up']);
  await execa('ip', ['-n', upstreamNs, 'addr', 'add', `${UPSTREAM}/15`, 'dev', 'eth0']);
  await execa('ip', ['-n', upstreamNs, 'link', 'set', 'eth0', 'up']);
  await execa('ip', ['-n', upstreamNs, 'link', 'set', 'lo', 'up']);
  const dnsmasq = execa('nsenter', [`--net=/run/netns/${upstreamNs}`, '/usr/sbin/dnsmasq', '--no-daemon', '--no-resolv', '--no-hosts', '--bind-interfaces',
    `--listen-address=${UPSTREAM}`, '--address=/outside.test/198.18.7.7', '--address=/outside.test/::'], { reject: false, stdio: 'ignore' });
  void dnsmasq;
}

test.before(async () => {
  lab = await labUp({ hosts: 3, prefix, dnsUpstreams: [SILENT_UPSTREAM, UPSTREAM] });
  await startUpstream();
});

test.after.always(async () => {
  if (process.env['WEFT_KEEP_LAB'] === '1') return;
  await execa('sh', ['-c', `ip netns pids ${upstreamNs} | xargs -r kill -9`], { reject: false });
  await execa('ip', ['netns', 'del', upstreamNs], { reject: false });
  await labDown(prefix);
});

test.serial('a VIP service: DNS names, PTR, SRV, load spread over three hosts, health checks and a host failure', async (t) => {
  const [h1, h2, h3] = lab.hosts as [LabHost, LabHost, LabHost];
  t.is((await weftOn(h1, ['network', 'create', 'app'])).exitCode, 0);
  t.is((await weftOn(h1, ['network', 'create', 'other'])).exitCode, 0);
  const created = await weftOn(h2, ['service', 'create', 'web', '--network', 'app', '--port', '80/tcp', '--health', 'tcp:80']);
  t.is(created.exitCode, 0, created.stderr);
  const vip = /VIP (\S+)\)/.exec(created.stdout)?.[1];
  t.truthy(vip, created.stdout);

  const backends = await Promise.all([backend(h1, 'app', 'web-1', 'web'), backend(h2, 'app', 'web-2', 'web'), backend(h3, 'app', 'web-3', 'web')]);
  const backendIps = backends.map((b) => b.endpoints[0]!.ip).sort();
  const client = await sandbox(h1, 'app', 'client');
  const stranger = await sandbox(h2, 'other', 'stranger');

  // Health checks pass, then every host agrees on three live backends.
  const tasks = await eventually('tasks.web to list the three backends', async () => {
    const ips = (await dig(client.netns, 'tasks.web')).sort();
    return ips.length === 3 ? ips : undefined;
  }, 60_000);
  t.deepEqual(tasks, backendIps);
  t.deepEqual(await dig(client.netns, 'web'), [vip]);
  t.deepEqual(await dig(client.netns, 'WEB.app'), [vip], 'names are case-insensitive and <name>.<network> works');
  t.deepEqual(await dig(client.netns, 'web-2'), [backends[1]!.endpoints[0]!.ip]);
  const ptr = await dig(client.netns, '-x', backends[2]!.endpoints[0]!.ip);
  t.true(ptr.some((name) => name.toLowerCase().startsWith('web-3')), `PTR gave ${ptr.join(',')}`);
  const vipPtr = await dig(client.netns, '-x', vip!);
  t.true(vipPtr.some((name) => name.toLowerCase().startsWith('web')), `VIP PTR gave ${vipPtr.join(',')}`);
  const srv = await dig(client.netns, 'SRV', '_tcp.web');
  t.true(srv.some((line) => line.split(/\s+/)[2] === '80'), `SRV gave ${srv.join(' | ')}`);
  const aaaa = await digStatus(client.netns, 'AAAA', 'web');
  t.deepEqual(aaaa, { status: 'NOERROR', answers: 0 }, 'AAAA of an IPv4-only name is an empty NOERROR');
  t.is((await digStatus(stranger.netns, 'web')).status, 'NXDOMAIN', 'a sandbox on another network does not see the service');
  t.is((await digStatus(client.netns, 'nosuchname')).status, 'NXDOMAIN');
  t.deepEqual(await dig(client.netns, 'www.outside.test'), ['198.18.7.7'], 'outside names go upstream, past the silent first upstream');

  // 300 connections to the VIP reach all three backends, each a fair share.
  const spread = await requests(client.netns, vip!, 300);
  t.log(`spread: ${JSON.stringify(Object.fromEntries(spread))}`);
  t.is(spread.get('FAILED'), undefined);
  for (const name of ['web-1', 'web-2', 'web-3']) t.true((spread.get(name) ?? 0) >= 50, `${name} got ${spread.get(name) ?? 0} of 300`);

  // weft doctor reads every sandbox's load-balancing table back: clean here, and it names a rule changed by hand.
  const clean = await weftOn(h1, ['doctor']);
  t.is(clean.exitCode, 0, clean.stdout + clean.stderr);
  await execa('ip', ['netns', 'exec', client.netns, NFT, `flush chain ip weft_lb svc_web\nadd rule ip weft_lb svc_web dnat to ${backendIps[0]}`]);
  const dirty = await weftOn(h1, ['doctor']);
  t.is(dirty.exitCode, 1);
  t.regex(dirty.stdout, /load balancing.*svc_web sends to \d+\.\d+\.\d+\.\d+, should send to/s);
  const rule = `dnat to numgen random mod 3 map { ${backendIps.map((ip, i) => `${i} : ${ip}`).join(', ')} }`;
  await execa('ip', ['netns', 'exec', client.netns, NFT, `flush chain ip weft_lb svc_web\nadd rule ip weft_lb svc_web ${rule}`]);
  t.is((await weftOn(h1, ['doctor'])).exitCode, 0, 'put back as it was: clean again');

  // A failing health check (only the agent's probe, which arrives on egress0, is refused) takes web-2 out of DNS and LB alike.
  const web2 = backends[1]!.netns;
  const block = 'table ip wtest {\n  chain input {\n    type filter hook input priority 0;\n    iifname "egress0" tcp dport 80 reject with tcp reset\n  }\n}\n';
  const blocked = await execa('ip', ['netns', 'exec', web2, NFT, '-f', '-'], { input: block, reject: false });
  t.is(blocked.exitCode, 0, String(blocked.stderr));
  await eventually('web-2 to leave tasks.web', async () => (await dig(client.netns, 'tasks.web')).length === 2, 60_000);
  t.false((await dig(client.netns, 'tasks.web')).includes(backends[1]!.endpoints[0]!.ip));
  const withoutWeb2 = await requests(client.netns, vip!, 60);
  t.is(withoutWeb2.get('web-2'), undefined, `web-2 still got traffic: ${JSON.stringify(Object.fromEntries(withoutWeb2))}`);
  t.is(withoutWeb2.get('FAILED'), undefined);
  await inSandbox(web2, [NFT, 'delete table ip wtest']);
  await eventually('web-2 to come back', async () => (await dig(client.netns, 'tasks.web')).length === 3, 60_000);

  // h3 dies (agent killed, underlay cut): once failure detection has done its work, no request fails and DNS forgot it.
  process.kill(h3.pid, 'SIGKILL');
  await execa('ip', ['-n', h3.netns, 'link', 'set', 'eth0', 'down']);
  const web3 = backends[2]!.endpoints[0]!.ip;
  await eventually('h3\'s backend to leave tasks.web', async () => !(await dig(client.netns, 'tasks.web')).includes(web3), 60_000);
  const afterFailure = await requests(client.netns, vip!, 60);
  t.is(afterFailure.get('FAILED'), undefined, `requests failed after failure detection: ${JSON.stringify(Object.fromEntries(afterFailure))}`);
  t.is(afterFailure.get('web-3'), undefined);
  await execa('ip', ['-n', h3.netns, 'link', 'set', 'eth0', 'up']);
  restartAgent(prefix, 'h3');
  await eventually('h3\'s backend to rejoin tasks.web', async () => (await dig(client.netns, 'tasks.web')).includes(web3), 90_000);
  const back = await requests(client.netns, vip!, 90);
  t.true((back.get('web-3') ?? 0) > 0, `web-3 gets traffic again: ${JSON.stringify(Object.fromEntries(back))}`);
});

test.serial('dnsrr: the name returns the task IPs and there is no VIP; rm releases the name', async (t) => {
  const [h1, h2] = lab.hosts as [LabHost, LabHost, LabHost];
  t.is((await weftOn(h1, ['network', 'create', 'rr'])).exitCode, 0);
  const created = await weftOn(h1, ['service', 'create', 'db', '--network', 'rr', '--mode', 'dnsrr']);
  t.is(created.exitCode, 0, created.stderr);
  const inspect = JSON.parse((await weftOn(h1, ['service', 'inspect', 'db'])).stdout) as { vip: string; mode: string };
  t.is(inspect.vip, '');
  t.is(inspect.mode, 'dnsrr');
  const tasks = await Promise.all([backend(h1, 'rr', 'db-1', 'db'), backend(h2, 'rr', 'db-2', 'db')]);
  const client = await sandbox(h2, 'rr', 'rr-client');
  const expected = tasks.map((b) => b.endpoints[0]!.ip).sort();
  t.deepEqual(await eventually('db to resolve to both tasks', async () => {
    const ips = (await dig(client.netns, 'db')).sort();
    return ips.length === 2 ? ips : undefined;
  }, 30_000), expected);
  const rm = await weftOn(h1, ['service', 'rm', 'db']);
  t.is(rm.exitCode, 0, rm.stderr);
  await eventually('db to be gone', async () => (await digStatus(client.netns, 'db')).status === 'NXDOMAIN', 30_000);
});

test.serial('bad service requests are refused with a reason and change nothing', async (t) => {
  const [h1] = lab.hosts as [LabHost];
  const noNetwork = await weftOn(h1, ['service', 'create', 'x', '--network', 'nope']);
  t.is(noNetwork.exitCode, 1);
  t.regex(noNetwork.stderr, /no network named "nope"/);
  const badHealth = await weftOn(h1, ['service', 'create', 'x', '--network', 'app', '--health', 'udp:1']);
  t.is(badHealth.exitCode, 2, 'a malformed argument is bad usage');
  t.regex(badHealth.stderr, /tcp:PORT or http:PORT\/PATH/);
  const duplicate = await weftOn(h1, ['service', 'create', 'web', '--network', 'app']);
  t.not(duplicate.exitCode, 0);
  t.regex(duplicate.stderr, /exists already/);
  const wrongNetwork = await weftOn(h1, ['run', '--detach', '--network', 'other', '--service', 'web', '--', 'sleep', '1']);
  t.is(wrongNetwork.exitCode, 2);
  t.regex(wrongNetwork.stderr, /service "web" is on network "app"/);
  const busy = await weftOn(h1, ['network', 'rm', 'app']);
  t.is(busy.exitCode, 1);
  t.regex(busy.stderr, /has services \(web\)/);
  const list = JSON.parse((await weftOn(h1, ['service', 'ls', '--json'])).stdout) as { name: string }[];
  t.deepEqual(list.map((s) => s.name), ['web']);
});
