// VIP load balancing on a real kernel, without agents: a client namespace and
// a server namespace joined by a veth pair, three backend addresses on the
// server side, socat answering each with its own address. The LoadBalancer
// programs the client's table the way the service plane does. Checks spread,
// UDP, an established connection keeping its backend across a change, fast
// refusal with no backend, a table left by an earlier agent, and recovery
// after the nft worker is killed.
import test from 'ava';
import { execa, type ResultPromise } from 'execa';
import { LoadBalancer, NftWorker, type LbService } from '../../dataplane/lb/index.ts';
import { netnsByName } from '../../dataplane/netns.ts';
import { randomPrefix } from '../../dataplane/testing/emulated-hosts.ts';
import { staleFlows } from '../../agent/services/stale-flows.ts';
import { fixedPortUdpClient } from '../helpers/udp-client.ts';

const prefix = randomPrefix('wlb');
const CLIENT = `${prefix}-c`;
const SERVER = `${prefix}-s`;
const CLIENT_IP = '100.64.250.1';
const BACKENDS = ['100.64.250.11', '100.64.250.12', '100.64.250.13'];
const VIP = '100.64.250.100';
const client = netnsByName(CLIENT);
const servers: ResultPromise[] = [];
let lb: LoadBalancer;

const web = (backends: readonly string[]): LbService => ({
  name: 'web', vip: VIP, backends, ports: [{ port: 80, protocol: 'tcp' }, { port: 81, protocol: 'tcp' }, { port: 53, protocol: 'udp' }],
});

function serve(ip: string, args: string[]): void {
  const p = execa('ip', ['netns', 'exec', SERVER, 'socat', ...args], { reject: false, stdio: 'ignore' });
  servers.push(p);
}

async function inClient(script: string): Promise<string> {
  return (await execa('ip', ['netns', 'exec', CLIENT, 'sh', '-c', script], { reject: false })).stdout;
}

/** Who answers n fresh TCP connections to the VIP. */
async function spread(n: number): Promise<Map<string, number>> {
  const out = await inClient(`for i in $(seq ${n}); do socat -T 2 - TCP:${VIP}:80,connect-timeout=2 </dev/null || echo FAILED; done`);
  const counts = new Map<string, number>();
  for (const line of out.split('\n').filter(Boolean)) counts.set(line, (counts.get(line) ?? 0) + 1);
  return counts;
}

async function waitListening(): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const ss = (await execa('ip', ['netns', 'exec', SERVER, 'ss', '-ltnH'], { reject: false })).stdout;
    if (BACKENDS.every((ip) => ss.includes(`${ip}:80`) && ss.includes(`${ip}:81`))) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('backends did not start listening');
}

test.before(async () => {
  const ip = (...args: string[]) => execa('ip', args);
  await ip('netns', 'add', CLIENT);
  await ip('netns', 'add', SERVER);
  await ip('-n', CLIENT, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', SERVER);
  await ip('-n', CLIENT, 'addr', 'add', `${CLIENT_IP}/24`, 'dev', 'eth0');
  for (const b of BACKENDS) await ip('-n', SERVER, 'addr', 'add', `${b}/24`, 'dev', 'eth0');
  for (const ns of [CLIENT, SERVER]) {
    await ip('-n', ns, 'link', 'set', 'lo', 'up');
    await ip('-n', ns, 'link', 'set', 'eth0', 'up');
  }
  for (const b of BACKENDS) {
    serve(b, [`TCP-LISTEN:80,bind=${b},fork,reuseaddr`, `SYSTEM:echo ${b}`]);
    // Port 81: says who it is, then echoes: a connection that stays open.
    serve(b, [`TCP-LISTEN:81,bind=${b},fork,reuseaddr`, `SYSTEM:echo ${b}; cat`]);
    serve(b, [`UDP-RECVFROM:53,bind=${b},fork`, `SYSTEM:echo ${b}`]);
  }
  await waitListening();
  lb = new LoadBalancer();
});

test.after.always(async () => {
  for (const s of servers) s.kill('SIGKILL');
  await lb?.close();
  for (const ns of [CLIENT, SERVER]) await execa('ip', ['netns', 'del', ns], { reject: false });
});

test.serial('new TCP connections to the VIP spread over every backend', async (t) => {
  const result = await lb.apply([{ sandbox: client, services: [web(BACKENDS)] }]);
  t.deepEqual(result, { applied: 1, unchanged: 0, errors: [] });
  const counts = await spread(90);
  t.false(counts.has('FAILED'), JSON.stringify([...counts]));
  t.deepEqual([...counts.keys()].sort(), BACKENDS);
  for (const b of BACKENDS) t.true((counts.get(b) ?? 0) >= 10, `${b} got ${counts.get(b) ?? 0} of 90`);
  // The same desired state again touches nothing.
  t.deepEqual(await lb.apply([{ sandbox: client, services: [web(BACKENDS)] }]), { applied: 0, unchanged: 1, errors: [] });
});

test.serial('UDP to the VIP reaches a backend', async (t) => {
  // A fresh socket (so a fresh flow) per query; each waits up to 5 s for its answer and is resent twice
  // (UDP may be lost, and a forking server answers slowly on a busy machine).
  const query = [
    'import socket',
    'for _ in range(6):',
    '    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)',
    '    s.settimeout(5)',
    '    for attempt in range(3):',
    `        s.sendto(b"q", ("${VIP}", 53))`,
    '        try:',
    '            print(s.recv(100).decode().strip(), flush=True)',
    '            break',
    '        except socket.timeout:',
    '            pass',
    '    s.close()',
  ].join('\n');
  const { stdout: out } = await execa('ip', ['netns', 'exec', CLIENT, '/usr/bin/python3', '-c', query]);
  const answers = out.split('\n').filter(Boolean);
  t.is(answers.length, 6);
  for (const a of answers) t.true(BACKENDS.includes(a), a);
});

test.serial('a backend change reaches new connections only; an established one keeps its backend', async (t) => {
  const held = execa('ip', ['netns', 'exec', CLIENT, 'socat', '-', `TCP:${VIP}:81`], { reject: false, stdin: 'pipe', buffer: false });
  const lines: string[] = [];
  held.stdout!.setEncoding('utf8').on('data', (chunk: string) => lines.push(...chunk.split('\n').filter(Boolean)));
  try {
    const until = async (n: number) => {
      for (let i = 0; i < 200 && lines.length < n; i++) await new Promise((r) => setTimeout(r, 25));
      t.true(lines.length >= n, `got ${JSON.stringify(lines)}`);
    };
    await until(1);
    const backend = lines[0]!;
    t.true(BACKENDS.includes(backend));
    const rest = BACKENDS.filter((b) => b !== backend);
    t.is((await lb.apply([{ sandbox: client, services: [web(rest)] }])).applied, 1);
    const counts = await spread(30);
    t.deepEqual([...counts.keys()].sort(), rest, 'new connections only go to the remaining backends');
    held.stdin!.write('still here\n');
    await until(2);
    t.is(lines[1], 'still here', 'the established connection still reaches its backend');
  } finally {
    held.kill('SIGKILL');
    await held;
  }
});

test.serial('backend changes (written as netlink) list exactly as nft writes them; a missing chain is an error, then repaired', async (t) => {
  const list = async () => (await execa('ip', ['netns', 'exec', CLIENT, '/usr/sbin/nft', 'list', 'table', 'ip', 'weft_lb'])).stdout;
  for (const backends of [[BACKENDS[0]!], BACKENDS, BACKENDS.slice(1)]) {
    t.deepEqual(await lb.apply([{ sandbox: client, services: [web(backends)] }]), { applied: 1, unchanged: 0, errors: [] });
    const fast = await list();
    const whole = new LoadBalancer();
    try {
      t.is((await whole.apply([{ sandbox: client, services: [web(backends)] }])).applied, 1);
    } finally {
      await whole.close();
    }
    t.is(fast, await list(), `backends ${backends.join(',')}`);
  }
  await execa('ip', ['netns', 'exec', CLIENT, '/usr/sbin/nft', 'delete', 'chain', 'ip', 'weft_lb', 'svc_web']).catch(() => undefined);
  await execa('ip', ['netns', 'exec', CLIENT, '/usr/sbin/nft', 'flush', 'table', 'ip', 'weft_lb']);
  await execa('ip', ['netns', 'exec', CLIENT, '/usr/sbin/nft', 'delete', 'chain', 'ip', 'weft_lb', 'svc_web']);
  const failed = await lb.apply([{ sandbox: client, services: [web(BACKENDS)] }]);
  t.is(failed.errors.length, 1);
  t.regex(failed.errors[0]!.error, /nftables refused the change: No such file or directory/);
  t.deepEqual((await lb.apply([{ sandbox: client, services: [web(BACKENDS)] }])).errors, [], 'the next apply rewrites the table whole');
  t.deepEqual([...(await spread(45)).keys()].sort(), BACKENDS);
});

test.serial('inspect (weft doctor) finds nothing in tables it wrote, and names a rule changed behind its back', async (t) => {
  t.deepEqual((await lb.apply([{ sandbox: client, services: [web(BACKENDS)] }])).errors, []);
  t.deepEqual(await lb.inspect([{ sandbox: client, services: [web(BACKENDS)] }]), []);
  await execa('ip', ['netns', 'exec', CLIENT, '/usr/sbin/nft', `flush chain ip weft_lb svc_web
add rule ip weft_lb svc_web dnat to 100.64.250.99`], { shell: false });
  t.deepEqual(await lb.inspect([{ sandbox: client, services: [web(BACKENDS)] }]), [
    { sandbox: CLIENT, problems: [`svc_web sends to 100.64.250.99, should send to ${BACKENDS.join(', ')}`] },
  ]);
  t.deepEqual(await lb.inspect([{ sandbox: client, services: [] }]), [{ sandbox: CLIENT, problems: ['a load-balancing table (ip weft_lb) that should not be there'] }]);
  lb.resync();
  t.deepEqual((await lb.apply([{ sandbox: client, services: [web(BACKENDS)] }])).errors, []);
  t.deepEqual(await lb.inspect([{ sandbox: client, services: [web(BACKENDS)] }]), []);
});

test.serial('a change of every service at once (one large netlink batch) is applied whole', async (t) => {
  const many = (g: number): LbService[] => Array.from({ length: 1000 }, (_, s) => ({
    name: `s${s}`, vip: `100.66.${Math.floor(s / 250)}.${(s % 250) + 2}`, ports: [{ port: 80, protocol: 'tcp' as const }],
    backends: [`100.67.${s % 250}.${2 + g}`, `100.67.${s % 250}.${100 + g}`],
  }));
  const desired = (g: number) => [{ sandbox: client, services: [web(BACKENDS), ...many(g)] }];
  t.deepEqual((await lb.apply(desired(0))).errors, []);
  t.deepEqual(await lb.apply(desired(1)), { applied: 1, unchanged: 0, errors: [] });
  t.deepEqual(await lb.inspect(desired(1)), []);
  t.deepEqual((await lb.apply([{ sandbox: client, services: [web(BACKENDS)] }])).errors, []);
});

test.serial('services without ports need no table; the worker answers every item, also hostile ones', async (t) => {
  const portless: LbService = { name: 'bare', vip: '100.64.250.101', ports: [], backends: BACKENDS };
  t.deepEqual((await lb.apply([{ sandbox: client, services: [portless] }])).errors, []);
  t.deepEqual(await lb.inspect([{ sandbox: client, services: [portless] }]), []);
  t.deepEqual((await lb.apply([{ sandbox: client, services: [web(BACKENDS)] }])).errors, []);
  const worker = new NftWorker();
  try {
    const replies = await worker.run([
      { netns: '/run/netns/bad\u0000path', script: 'list tables' },
      { netns: `/run/netns/${CLIENT}`, table: 'weft_lb', chains: [['svc_web', ['not-an-ip']]] },
      { netns: `/run/netns/${CLIENT}`, flows: [['not-an-ip', 'udp', BACKENDS[0]!]] },
      { netns: `/run/netns/${CLIENT}`, flows: 'nonsense' } as never,
      { netns: `/run/netns/${CLIENT}`, flows: [[VIP, 'sctp', BACKENDS[0]!]] } as never,
      { netns: `/run/netns/${CLIENT}`, flows: [[VIP, 'udp', BACKENDS[0]!]] },
      { netns: `/run/netns/${CLIENT}`, list: 'weft_lb' },
    ]);
    t.is(replies.length, 7);
    t.false(replies[0]!.ok);
    t.false(replies[1]!.ok);
    t.false(replies[2]!.ok, 'a bad flow address is refused');
    t.false(replies[3]!.ok, 'flows must be a list of triples');
    t.false(replies[4]!.ok, 'only tcp and udp');
    t.true(replies[5]!.ok, 'deleting flows nobody has is fine');
    t.true(replies[6]!.ok, 'the worker still works after the bad items');
  } finally {
    await worker.close();
  }
});

async function waitFor(what: string, check: () => boolean, timeoutMs = 20_000): Promise<void> {
  for (const deadline = Date.now() + timeoutMs; Date.now() < deadline;) {
    if (check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** The client's flow moves off its backend once that backend leaves the set with its flows dropped. */
async function flowMoves(balancer: LoadBalancer): Promise<{ first: string; after: string[] }> {
  await balancer.apply([{ sandbox: client, services: [web(BACKENDS)] }]);
  const udp = fixedPortUdpClient(CLIENT, VIP, 53, { intervalMs: 100, markSilence: false }); // answers: each reply's backend address
  try {
    await waitFor('five answers', () => udp.answers.length >= 5);
    const first = udp.answers[0]!;
    const rest = BACKENDS.filter((b) => b !== first);
    const result = await balancer.apply([{ sandbox: client, services: [web(rest)], dropFlows: [[VIP, 'udp', first]] }]);
    if (result.errors.length > 0) throw new Error(result.errors[0]!.error);
    const mark = udp.answers.length;
    // The old backend still answers (it only left the set): without the entry's deletion the flow stays on it.
    // Seven, so that five are left past the two answers that may have been in flight; a
    // starved machine answers few of the 10 queries a second, so the wait is generous.
    await waitFor('answers from a remaining backend', () => udp.answers.slice(mark).filter((a) => rest.includes(a)).length >= 7, 30_000).catch(() => undefined);
    await new Promise((r) => setTimeout(r, 300));
    return { first, after: udp.answers.slice(mark + 2) };
  } finally {
    await udp.stop();
  }
}

test.serial('a UDP flow from one source port moves to a remaining backend when its backend leaves', async (t) => {
  const { first, after } = await flowMoves(lb);
  t.true(BACKENDS.includes(first), first);
  t.true(after.length >= 5, `answers after the change: ${JSON.stringify(after.slice(-5))}`);
  t.false(after.includes(first), `still answered by ${first}: ${JSON.stringify(after.slice(-5))}`);
  t.is(new Set(after).size, 1, 'the moved flow stays on its new backend');
  t.deepEqual((await lb.apply([{ sandbox: client, services: [web(BACKENDS)] }])).errors, []);
});

test.serial('the same on kernels without filtered conntrack deletes (dump and delete each entry)', async (t) => {
  process.env['WEFT_LB_CONNTRACK'] = 'dump';
  const dumping = new LoadBalancer({ workers: 1 });
  delete process.env['WEFT_LB_CONNTRACK'];
  try {
    await dumping.apply([{ sandbox: client, services: [web(BACKENDS)] }]); // starts the worker with the variable
    const { first, after } = await flowMoves(dumping);
    t.true(after.length >= 5, `answers after the change: ${JSON.stringify(after.slice(-5))}`);
    t.false(after.includes(first), `still answered by ${first}: ${JSON.stringify(after.slice(-5))}`);
  } finally {
    await dumping.close();
  }
  t.deepEqual((await lb.apply([{ sandbox: client, services: [web(BACKENDS)] }])).errors, []);
});

test.serial('a load balancer that did not write a table reads what it balances from the kernel (an agent after a restart)', async (t) => {
  lb.resync(); // the test before changed the table with another LoadBalancer
  t.deepEqual((await lb.apply([{ sandbox: client, services: [web(BACKENDS)] }])).errors, []);
  const restarted = new LoadBalancer({ workers: 1 });
  try {
    const held = await restarted.held([client, netnsByName(SERVER)]);
    const sorted = (list: readonly LbService[] | undefined) => list?.map((s) => ({ ...s, ports: [...s.ports].sort((a, b) => a.port - b.port), backends: [...s.backends].sort() }));
    t.deepEqual(sorted(held.get(CLIENT)), sorted([web(BACKENDS)]));
    t.deepEqual(held.get(SERVER), [], 'a namespace without a table balances nothing');
    // What the service plane then asks of the first apply: the flows of the backend that left while it was down.
    t.deepEqual(staleFlows(held.get(CLIENT)!, [web(BACKENDS.slice(1))]), [[VIP, 'udp', BACKENDS[0]]]);
  } finally {
    await restarted.close();
  }
});

test.serial('with no live backend, connections are refused at once instead of timing out', async (t) => {
  t.is((await lb.apply([{ sandbox: client, services: [web([])] }])).applied, 1);
  const r = await execa('ip', ['netns', 'exec', CLIENT, 'socat', '-T', '5', '-', `TCP:${VIP}:80,connect-timeout=5`], { reject: false, stdin: 'ignore' });
  t.not(r.exitCode, 0);
  t.regex(r.stderr, /Connection refused/);
  t.is((await lb.apply([{ sandbox: client, services: [web([BACKENDS[0]!])] }])).applied, 1);
  t.deepEqual([...(await spread(5)).keys()], [BACKENDS[0]]);
});

test.serial('a table this process did not write is replaced; removing every service removes the table', async (t) => {
  const fresh = new LoadBalancer();
  try {
    // Another agent's table with stale backends: the first apply rewrites it whole.
    t.is((await fresh.apply([{ sandbox: client, services: [web(BACKENDS.slice(1))] }])).applied, 1);
    t.deepEqual([...(await spread(20)).keys()].sort(), BACKENDS.slice(1));
    t.is((await fresh.apply([{ sandbox: client, services: [] }])).applied, 1);
    const tables = (await execa('ip', ['netns', 'exec', CLIENT, '/usr/sbin/nft', 'list', 'tables'])).stdout;
    t.notRegex(tables, /weft_lb/);
  } finally {
    await fresh.close();
  }
});

test.serial('bad desired state is refused for that sandbox without touching the kernel', async (t) => {
  const result = await lb.apply([{ sandbox: client, services: [{ ...web(BACKENDS), vip: 'not-an-ip' }] }]);
  t.is(result.applied, 0);
  t.is(result.errors.length, 1);
  t.regex(result.errors[0]!.error, /VIP "not-an-ip" is not an IPv4 address/);
});

test.serial('killed nft workers are replaced by the next apply', async (t) => {
  lb.resync(); // the test before removed the table with another LoadBalancer
  t.is((await lb.apply([{ sandbox: client, services: [web(BACKENDS)] }])).errors.length, 0);
  const pids = lb.workerPids.filter((pid) => pid !== undefined);
  t.is(pids.length, 1, 'one namespace keeps one worker busy');
  for (const pid of pids) process.kill(pid, 'SIGKILL');
  for (let i = 0; i < 100 && lb.workerPids.some((pid) => pid !== undefined); i++) await new Promise((r) => setTimeout(r, 20));
  const result = await lb.apply([{ sandbox: client, services: [web(BACKENDS.slice(0, 2))] }]);
  t.deepEqual(result.errors, []);
  t.is(result.applied, 1);
  t.true(lb.workerPids.some((pid) => pid !== undefined && !pids.includes(pid)), 'a new worker runs');
  t.deepEqual([...(await spread(30)).keys()].sort(), BACKENDS.slice(0, 2));
});

test.serial('resync repairs a table changed behind the load balancer\'s back', async (t) => {
  t.is((await lb.apply([{ sandbox: client, services: [web(BACKENDS)] }])).errors.length, 0);
  await execa('ip', ['netns', 'exec', CLIENT, '/usr/sbin/nft', 'delete', 'table', 'ip', 'weft_lb']);
  t.is((await lb.apply([{ sandbox: client, services: [web(BACKENDS)] }])).unchanged, 1, 'without resync, nothing is known to differ');
  lb.resync();
  t.is((await lb.apply([{ sandbox: client, services: [web(BACKENDS)] }])).applied, 1);
  t.deepEqual([...(await spread(45)).keys()].sort(), BACKENDS);
});
