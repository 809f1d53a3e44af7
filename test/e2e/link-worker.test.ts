// The link worker runs the data plane's `ip` batches as netlink requests
// (dataplane/link-worker.ts). What must hold: the kernel ends as `ip` would
// leave it, failures read as `ip`'s do, a line it does not know goes to the
// real tool, a link re-made under the same name is found (ip's own batch mode
// would miss it), and no namespace is kept alive by the worker.
import test from 'ava';
import { BatchError, processRunner, runBatch, type Runner } from '../../dataplane/exec.ts';
import { commandOf, LINK_WORKER_SCRIPT, LinkWorker, linkWorkerRunner } from '../../dataplane/link-worker.ts';
import { PYTHON } from '../../dataplane/python-worker.ts';
import { ip, removeNamespacesWithPrefix } from '../../dataplane/testing/underlay.ts';
import { uniquePrefix } from '../helpers/weft-cli.ts';

const prefix = uniquePrefix('lw');
/** The worker runs inside this namespace, which stands for the host's: "no -n" lines land here. */
const HOME = `${prefix}-home`;
const worker = new LinkWorker({ command: ['nsenter', `--net=/run/netns/${HOME}`, '--', PYTHON, LINK_WORKER_SCRIPT] });
const tool = processRunner(['nsenter', `--net=/run/netns/${HOME}`, '--']);
const viaWorker = linkWorkerRunner(tool, worker);

test.before(async () => {
  await ip('netns', 'add', HOME);
});

test.after.always(async () => {
  await worker.close();
  await removeNamespacesWithPrefix(prefix);
});

/** A network's namespace (bridge br0 up, 100.64.x.1/24) and a container's, both empty otherwise. */
async function networkAndContainer(tag: string): Promise<{ net: string; ctr: string }> {
  const net = `${prefix}-${tag}n`;
  const ctr = `${prefix}-${tag}c`;
  await ip('netns', 'add', net);
  await ip('netns', 'add', ctr);
  await ip('-n', net, 'link', 'add', 'br0', 'type', 'bridge');
  await ip('-n', net, 'link', 'set', 'br0', 'up');
  return { net, ctr };
}

/** The batches of a container's first link to a network and its gateway leg (dataplane/sandbox.ts, egress.ts). */
async function attach(runner: Runner, net: string, ctr: string, gatewayBridge: string, routed: string): Promise<void> {
  await runBatch(runner, 'ip', ['-n', net], [
    'link add br1 mtu 1450 address 02:42:64:40:01:01 type bridge',
    'addr add 100.64.1.1/24 dev br1',
    'addr add 100.64.2.1/24 dev br1',
    'addr del 100.64.2.1/24 dev br1',
    'link set dev br1 up',
  ], { stopAtFirstError: true });
  await runBatch(runner, 'ip', ['-n', net], [
    `link add vh1 mtu 1450 type veth peer name eth0 mtu 1450 address 02:42:64:40:00:02 netns /run/netns/${ctr}`,
    'link set dev vh1 master br0',
    'link set dev vh1 alias weft:container:eth0',
    'link set dev vh1 up',
  ], { stopAtFirstError: true });
  await runBatch(runner, 'ip', ['-n', ctr], [
    'link set dev lo up',
    'link set dev eth0 alias weft:network',
    'addr add 100.64.0.2/24 dev eth0',
    'link set dev eth0 up',
  ], { stopAtFirstError: true });
  await runBatch(runner, 'ip', [], [
    `link add ${gatewayBridge}p mtu 1450 group 7 type veth peer name egress0 mtu 1450 address 02:42:c6:33:64:02 netns ${ctr}`,
    `link set dev ${gatewayBridge}p master ${gatewayBridge}`,
    `link set dev ${gatewayBridge}p type bridge_slave isolated on`,
    `link set dev ${gatewayBridge}p up`,
  ], { stopAtFirstError: true });
  await runBatch(runner, 'nsenter', [`--net=/run/netns/${ctr}`, '--', 'ip'], [
    'addr replace 198.51.100.2/24 dev egress0',
    'link set dev egress0 up',
    'route replace default via 198.51.100.1 dev egress0',
  ]);
  await runBatch(runner, 'ip', [], [
    `route replace ${routed}/32 via 198.51.100.2 dev ${gatewayBridge} proto 119`,
    `route replace 203.0.113.9/32 via 198.51.100.3 dev ${gatewayBridge} proto 119`,
    'route del 203.0.113.9/32 proto 119',
  ]);
}

interface JsonLink {
  ifname: string; mtu: number; master?: string; ifalias?: string; flags: string[]; address: string; group: string;
  linkinfo?: { info_kind?: string; info_slave_kind?: string; info_slave_data?: { isolated?: boolean } };
}

/** What a namespace holds, without what differs between two runs (indexes, random MACs, peers' names of other runs). */
async function state(netns: string, names: Record<string, string>): Promise<unknown> {
  const rename = (s: string | undefined) => (s === undefined ? undefined : names[s] ?? s);
  const links = JSON.parse(await ip('-n', netns, '-d', '-j', 'link', 'show')) as JsonLink[];
  const addrs = JSON.parse(await ip('-n', netns, '-j', '-4', 'addr', 'show')) as { ifname: string; addr_info: { local: string; prefixlen: number; scope: string }[] }[];
  const routes = JSON.parse(await ip('-n', netns, '-j', '-4', 'route', 'show', 'table', 'main')) as { dst: string; gateway?: string; dev: string; protocol?: string; scope?: string }[];
  return {
    links: links.map((l) => ({
      ifname: rename(l.ifname), mtu: l.mtu, master: rename(l.master), alias: l.ifalias, up: l.flags.includes('UP'), group: l.group,
      kind: l.linkinfo?.info_kind, slave: l.linkinfo?.info_slave_kind, isolated: l.linkinfo?.info_slave_data?.isolated,
      mac: ['eth0', 'egress0', 'br1'].includes(l.ifname) ? l.address : undefined,
    })).sort((a, b) => String(a.ifname).localeCompare(String(b.ifname))),
    addrs: addrs.map((a) => ({ ifname: rename(a.ifname), addrs: a.addr_info })),
    routes: routes.map((r) => ({ ...r, dev: rename(r.dev) })),
  };
}

test.serial('a container attach through the worker leaves every namespace as ip leaves it', async (t) => {
  const a = await networkAndContainer('a');
  const b = await networkAndContainer('b');
  for (const bridge of ['gwa', 'gwb']) {
    await ip('-n', HOME, 'link', 'add', bridge, 'type', 'bridge');
    await ip('-n', HOME, 'addr', 'add', '198.51.100.1/24', 'dev', bridge);
    await ip('-n', HOME, 'link', 'set', bridge, 'up');
  }
  const spawned: string[] = [];
  const counted = linkWorkerRunner((file, args, input) => {
    spawned.push([file, ...args].join(' '));
    return tool(file, args, input);
  }, worker);
  await attach(counted, a.net, a.ctr, 'gwa', '100.64.0.2');
  t.deepEqual(spawned, [], 'the worker knew every line: no process was started');
  await attach(tool, b.net, b.ctr, 'gwb', '100.64.0.3');
  t.deepEqual(await state(a.net, {}), await state(b.net, {}), 'network namespace');
  t.deepEqual(await state(a.ctr, {}), await state(b.ctr, {}), 'container namespace');
  const home = JSON.parse(await ip('-n', HOME, '-j', '-4', 'route', 'show', 'proto', '119')) as { dst: string; gateway: string; dev: string }[];
  t.deepEqual(home.map((r) => `${r.dst} via ${r.gateway} dev ${r.dev}`).sort(), ['100.64.0.2 via 198.51.100.2 dev gwa', '100.64.0.3 via 198.51.100.2 dev gwb']);
  const ports = JSON.parse(await ip('-n', HOME, '-d', '-j', 'link', 'show', 'group', '7')) as JsonLink[];
  // ip -j prints {} for each link outside the group.
  t.deepEqual(ports.filter((p) => p.ifname !== undefined).map((p) => [p.ifname, p.master, p.linkinfo?.info_slave_data?.isolated, p.flags.includes('UP')]).sort(), [['gwap', 'gwa', true, true], ['gwbp', 'gwb', true, true]]);
});

test.serial('remote endpoints\' FDB and neighbour entries through the worker are the ones the tools write', async (t) => {
  const vteps: Record<string, string> = {};
  for (const [tag, runner] of [['w', viaWorker], ['t', tool]] as const) {
    const ns = `${prefix}-e${tag}`;
    await ip('netns', 'add', ns);
    await ip('-n', ns, 'link', 'add', 'vxlan0', 'type', 'vxlan', 'id', '42', 'local', '198.18.0.1', 'dstport', '4789', 'nolearning');
    await runBatch(runner, 'bridge', ['-n', ns], [
      'fdb replace 02:42:64:40:00:05 dev vxlan0 dst 198.18.0.2 self permanent',
      'fdb replace 02:42:64:40:00:06 dev vxlan0 dst 198.18.0.3 self permanent',
      'fdb replace 02:42:64:40:00:06 dev vxlan0 dst 198.18.0.4 self permanent',
      'fdb replace 02:42:64:40:00:07 dev vxlan0 dst 198.18.0.2 self permanent',
      'fdb del 02:42:64:40:00:07 dev vxlan0 self',
    ]);
    await runBatch(runner, 'ip', ['-n', ns], [
      'neigh replace 100.64.0.5 lladdr 02:42:64:40:00:05 dev vxlan0 nud permanent',
      'neigh replace 100.64.0.6 lladdr 02:42:64:40:00:09 dev vxlan0 nud permanent',
      'neigh replace 100.64.0.6 lladdr 02:42:64:40:00:06 dev vxlan0 nud permanent',
      'neigh replace 100.64.0.7 lladdr 02:42:64:40:00:07 dev vxlan0 nud permanent',
      'neigh del 100.64.0.7 dev vxlan0',
    ]);
    const listed = [await ip('-n', ns, 'neigh', 'show', 'dev', 'vxlan0'), await tool('bridge', ['-n', ns, 'fdb', 'show', 'dev', 'vxlan0']).then((r) => r.stdout)];
    vteps[tag] = listed.join('\n').split('\n').sort().join('\n'); // the kernel lists in hash order
  }
  t.is(vteps.w, vteps.t);
  t.regex(vteps.w!, /02:42:64:40:00:06 dst 198\.18\.0\.4 self permanent/);
  t.notRegex(vteps.w!, /00:07/);
  const missing = await t.throwsAsync(runBatch(viaWorker, 'bridge', ['-n', `${prefix}-ew`], ['fdb del 02:42:64:40:00:07 dev vxlan0 self', 'fdb replace 02:42:64:40:00:08 dev vxlan0 dst 198.18.0.2 self permanent']), { instanceOf: BatchError });
  t.deepEqual(missing.failures.map((f) => f.lineNumber), [1], 'a delete of an entry that is gone fails alone; the line after it ran');
});

test.serial('a failed line reads as ip\'s: its number and the kernel\'s reason; without -force nothing after it runs', async (t) => {
  const { ctr } = await networkAndContainer('f');
  await runBatch(viaWorker, 'ip', ['-n', ctr], ['link add va mtu 1400 type veth peer name vb']);
  const error = await t.throwsAsync(runBatch(viaWorker, 'ip', ['-n', ctr], ['link set dev va up', 'link set dev nosuch up', 'link set dev vb up'], { stopAtFirstError: true }), { instanceOf: BatchError });
  t.deepEqual(error.failures.map((f) => [f.lineNumber, f.line]), [[2, 'link set dev nosuch up']]);
  t.is(error.failures[0]!.message, 'Cannot find device "nosuch"');
  const up = (name: string) => ip('-n', ctr, '-j', 'link', 'show', name).then((out) => (JSON.parse(out) as JsonLink[])[0]!.flags.includes('UP'));
  t.true(await up('va'));
  t.false(await up('vb'), 'the line after the failure did not run');
  const forced = await t.throwsAsync(runBatch(viaWorker, 'ip', ['-n', ctr], ['addr add 192.0.2.1/24 dev nosuch', 'link set dev vb up', 'route replace 203.0.113.0/24 via 192.0.2.99']), { instanceOf: BatchError });
  t.deepEqual(forced.failures.map((f) => f.lineNumber), [1, 3]);
  t.regex(forced.failures[0]!.message, /Cannot find device "nosuch"/);
  t.true(await up('vb'), 'with -force the lines after a failure run');
  const gone = await viaWorker('ip', ['-n', `${prefix}-nosuch`, '-batch', '-'], 'link set dev lo up\n');
  t.is(gone.exitCode, 1);
  t.regex(gone.stderr, /Cannot open network namespace ".*-nosuch": No such file or directory/);
});

test.serial('a single ip command goes to the worker too, and fails as ip does', async (t) => {
  const { ctr } = await networkAndContainer('o');
  await runBatch(viaWorker, 'ip', ['-n', ctr], ['link add vo type veth peer name vp']);
  t.deepEqual(await viaWorker('ip', ['-n', ctr, 'link', 'del', 'dev', 'vo'], undefined), { exitCode: 0, stdout: '', stderr: '' });
  t.deepEqual(await viaWorker('ip', ['-n', ctr, 'link', 'del', 'dev', 'vo'], undefined), { exitCode: 1, stdout: '', stderr: 'Cannot find device "vo"' });
  t.is((await ip('-n', ctr, '-br', 'link', 'show')).includes('vp'), false, 'the pair went');
});

test.serial('a line the worker does not know sends the whole batch to the tool', async (t) => {
  const { ctr } = await networkAndContainer('u');
  const seen: string[] = [];
  const spy: Runner = (file, args, input) => {
    seen.push([file, ...args].join(' '));
    return tool(file, args, input);
  };
  const runner = linkWorkerRunner(spy, worker);
  await runBatch(runner, 'ip', ['-n', ctr], ['link set dev lo up']);
  t.deepEqual(seen, [], 'a known line: the worker, no process');
  await runBatch(runner, 'ip', ['-n', ctr], ['link set dev lo up', 'link set dev lo txqueuelen 1000']);
  t.deepEqual(seen, [`ip -n ${ctr} -force -batch -`]);
  t.deepEqual(await runBatch(runner, 'ip', ['-n', ctr], []), undefined, 'an empty batch runs nothing');
  seen.length = 0;
  // Words ip would read otherwise: a separator it does not split on, a quote it strips, /proc/self (the worker's own namespace).
  for (const line of ['link set dev lo\x1cup', 'link set dev lo alias "q"', `link add vq type veth peer name vr netns /proc/self/ns/net`]) {
    await runner('ip', ['-n', ctr, '-batch', '-'], `${line}\n`);
  }
  t.is(seen.length, 3, `each went to the tool: ${seen.join(' | ')}`);
});

test.serial('a worker that cannot start leaves the work to the tool', async (t) => {
  const { ctr } = await networkAndContainer('x');
  const broken = new LinkWorker({ command: ['/nonexistent/python3'] });
  t.teardown(() => broken.close());
  await runBatch(linkWorkerRunner(tool, broken), 'ip', ['-n', ctr], ['link add vs type veth peer name vt']);
  t.true((await ip('-n', ctr, '-br', 'link', 'show')).includes('vs@vt'));
  await broken.close();
  await runBatch(linkWorkerRunner(tool, broken), 'ip', ['-n', ctr], ['link del dev vs']);
  t.false((await ip('-n', ctr, '-br', 'link', 'show')).includes('vs@vt'), 'a closed worker leaves it to the tool too');
});

test.serial('a link deleted and made again under the same name is the one the next batch changes', async (t) => {
  // A long-lived `ip -batch` keeps a name -> index cache: this is the case it gets wrong.
  const { ctr } = await networkAndContainer('s');
  await runBatch(viaWorker, 'ip', ['-n', ctr], ['link add vx type veth peer name vy', 'addr add 192.0.2.1/24 dev vx']);
  await ip('-n', ctr, 'link', 'del', 'vx');
  await ip('-n', ctr, 'link', 'add', 'vz', 'type', 'veth', 'peer', 'name', 'vw');
  await ip('-n', ctr, 'link', 'add', 'vx', 'type', 'veth', 'peer', 'name', 'vy');
  await runBatch(viaWorker, 'ip', ['-n', ctr], ['addr add 192.0.2.2/24 dev vx']);
  const addrs = JSON.parse(await ip('-n', ctr, '-j', '-4', 'addr', 'show', 'dev', 'vx')) as { addr_info: { local: string }[] }[];
  t.deepEqual(addrs[0]!.addr_info.map((a) => a.local), ['192.0.2.2']);
});

test.serial('the worker keeps no namespace alive: a container namespace deleted after a batch goes, and its veth with it', async (t) => {
  const { net, ctr } = await networkAndContainer('k');
  await runBatch(viaWorker, 'ip', ['-n', net], [`link add vk mtu 1450 type veth peer name eth0 netns ${ctr}`, 'link set dev vk up']);
  await runBatch(viaWorker, 'nsenter', [`--net=/run/netns/${ctr}`, '--', 'ip'], ['addr add 192.0.2.1/24 dev eth0', 'link set dev eth0 up']);
  // A namespace is destroyed once nothing holds it (no process, mount, open file or socket), and its veths with it.
  await ip('netns', 'delete', ctr);
  const deadline = Date.now() + 30_000;
  let links = '';
  while (Date.now() < deadline) {
    links = await ip('-n', net, '-br', 'link', 'show');
    if (!links.includes('vk')) break;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  t.false(links.includes('vk'), `the container namespace was held alive: ${links}`);
});

test('which command lines the worker takes', (t) => {
  const batch = (file: string, args: readonly string[], input?: string) => commandOf(file, args, input)?.batch;
  t.deepEqual(batch('ip', ['-batch', '-'], 'link set dev lo up\n'), { netns: null, tool: 'ip', lines: ['link set dev lo up'], force: false });
  t.deepEqual(batch('ip', ['-n', 'blue', '-force', '-batch', '-'], 'a\nb\n'), { netns: '/run/netns/blue', tool: 'ip', lines: ['a', 'b'], force: true });
  t.deepEqual(batch('nsenter', ['--net=/proc/42/ns/net', '--', 'ip', '-batch', '-'], 'a\n'), { netns: '/proc/42/ns/net', tool: 'ip', lines: ['a'], force: false });
  t.deepEqual(commandOf('ip', ['-n', 'blue', 'link', 'del', 'dev', 'v1'], undefined), { batch: { netns: '/run/netns/blue', tool: 'ip', lines: ['link del dev v1'], force: false }, single: true });
  t.deepEqual(batch('bridge', ['-n', 'blue', '-force', '-batch', '-'], 'fdb del x\n'), { netns: '/run/netns/blue', tool: 'bridge', lines: ['fdb del x'], force: true });
  for (const [file, args, input] of [
    ['ip', ['-j', '-batch', '-'], 'x\n'], ['ip', ['-n', '../x', '-batch', '-'], 'x\n'], ['tc', ['-batch', '-'], 'x\n'], ['ip', ['-batch', '/tmp/f'], 'x\n'],
    ['nsenter', ['--net=relative', '--', 'ip', '-batch', '-'], 'x\n'], ['nsenter', ['--net=/x', '--', 'nft', '-f', '-'], 'x\n'],
    ['ip', ['-j', 'link', 'show'], undefined], ['ip', [], undefined], ['ip', ['link', 'set', 'dev', 'x', 'alias', 'two words'], undefined],
  ] as const) t.is(commandOf(file, args, input), undefined, `${file} ${args.join(' ')}`);
});
