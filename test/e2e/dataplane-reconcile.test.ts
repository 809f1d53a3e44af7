// The reconciler against a real kernel: entries deleted or added by hand are
// repaired, a correct state (also seen by a freshly started data plane, as
// after an agent restart) is left alone and traffic keeps flowing.
import test from 'ava';
import { execa } from 'execa';
import type { EmulatedHost, EmulatedHosts } from '../../dataplane/testing/emulated-hosts.ts';
import type { Network, NetworkEndpoints } from '../../dataplane/index.ts';
import { createEmulatedHosts, pingFrom, randomPrefix } from '../../dataplane/testing/emulated-hosts.ts';
import { attachSandbox, createSandbox, dataplaneContext, ensureNetwork, macFromIp, reconcile } from '../../dataplane/index.ts';

let lab: EmulatedHosts;
let h1: EmulatedHost;
let h2: EmulatedHost;
let net1: Network;
let sandbox1 = '';
const VNI = 5001;
const remote = (ip: string, vtep: string) => ({ ip, mac: macFromIp(ip), vtep });
/** h1's desired remote endpoints: the sandbox on h2 plus two endpoints of hosts that need not exist. */
let desired1: NetworkEndpoints[];

async function bridgeFdb(netns: string): Promise<Array<{ mac: string; dst?: string; state: string; master?: string; flags: string[] }>> {
  return JSON.parse((await execa('bridge', ['-n', netns, '-j', 'fdb', 'show', 'dev', 'vxlan0'])).stdout || '[]');
}
async function neighbours(netns: string): Promise<Array<{ dst: string; lladdr?: string; state: string[] }>> {
  return JSON.parse((await execa('ip', ['-n', netns, '-4', '-j', 'neigh', 'show', 'dev', 'vxlan0'])).stdout || '[]');
}
function counts(r: { added: number; removed: number; replaced: number }) {
  return { added: r.added, removed: r.removed, replaced: r.replaced };
}

test.before(async () => {
  lab = await createEmulatedHosts({ prefix: randomPrefix('dpr'), hosts: 2 });
  [h1, h2] = lab.hosts as [EmulatedHost, EmulatedHost];
  const spec = (vtep: string) => ({ name: 'green', vni: VNI, subnet: '100.64.8.0/24', gateway: '100.64.8.1', vtep });
  net1 = (await ensureNetwork(h1.ctx, spec(h1.ip))).network;
  const net2 = (await ensureNetwork(h2.ctx, spec(h2.ip))).network;
  const s1 = (await createSandbox(h1.ctx, 'x')).sandbox;
  const s2 = (await createSandbox(h2.ctx, 'y')).sandbox;
  await attachSandbox(h1.ctx, s1, net1, { ip: '100.64.8.10', defaultRoute: true });
  await attachSandbox(h2.ctx, s2, net2, { ip: '100.64.8.20', defaultRoute: true });
  sandbox1 = s1.ref.kind === 'name' ? s1.ref.name : '';
  desired1 = [{ vni: VNI, endpoints: [remote('100.64.8.20', h2.ip), remote('100.64.8.30', '198.18.0.9'), remote('100.64.8.31', '198.18.0.9')] }];
  const first = await reconcile(h1.ctx, desired1);
  if (first.errors.length > 0 || first.added !== 6) throw new Error(`initial reconcile: ${JSON.stringify(first)}`);
  await reconcile(h2.ctx, [{ vni: VNI, endpoints: [remote('100.64.8.10', h1.ip)] }]);
});

test.after.always(async () => {
  await lab?.cleanup();
});

test.serial('reconciling an already-correct state changes nothing', async (t) => {
  t.deepEqual(counts(await reconcile(h1.ctx, desired1)), { added: 0, removed: 0, replaced: 0 });
  t.true((await pingFrom(sandbox1, '100.64.8.20')).ok);
});

test.serial('an FDB entry deleted by hand is restored', async (t) => {
  await execa('bridge', ['-n', net1.netns, 'fdb', 'del', macFromIp('100.64.8.20'), 'dev', 'vxlan0', 'self']);
  t.false((await pingFrom(sandbox1, '100.64.8.20')).ok, 'without its FDB entry the remote sandbox is unreachable');
  const result = await reconcile(h1.ctx, desired1);
  t.deepEqual(counts(result), { added: 1, removed: 0, replaced: 0 });
  t.deepEqual(result.networks[0]!.fdb, { added: 1, removed: 0, replaced: 0 });
  t.true((await pingFrom(sandbox1, '100.64.8.20')).ok);
});

test.serial('a neighbour entry deleted by hand is restored', async (t) => {
  await execa('ip', ['-n', net1.netns, 'neigh', 'del', '100.64.8.31', 'dev', 'vxlan0']);
  const result = await reconcile(h1.ctx, desired1);
  t.deepEqual(result.networks[0]!.neighbours, { added: 1, removed: 0, replaced: 0 });
  t.true((await neighbours(net1.netns)).some((n) => n.dst === '100.64.8.31' && n.lladdr === macFromIp('100.64.8.31') && n.state.includes('PERMANENT')));
});

test.serial('stale entries added by hand are removed, wrong ones replaced', async (t) => {
  await execa('bridge', ['-n', net1.netns, 'fdb', 'add', '02:42:64:40:08:63', 'dev', 'vxlan0', 'dst', '198.18.0.7', 'self', 'permanent']);
  await execa('ip', ['-n', net1.netns, 'neigh', 'add', '100.64.8.99', 'lladdr', '02:42:64:40:08:63', 'dev', 'vxlan0', 'nud', 'permanent']);
  await execa('bridge', ['-n', net1.netns, 'fdb', 'replace', macFromIp('100.64.8.30'), 'dev', 'vxlan0', 'dst', '198.18.0.8', 'self', 'permanent']);
  await execa('ip', ['-n', net1.netns, 'neigh', 'replace', '100.64.8.31', 'lladdr', '02:42:64:40:08:64', 'dev', 'vxlan0', 'nud', 'permanent']);
  const result = await reconcile(h1.ctx, desired1);
  t.deepEqual(counts(result), { added: 0, removed: 2, replaced: 2 });
  const fdb = (await bridgeFdb(net1.netns)).filter((e) => e.dst !== undefined);
  t.deepEqual(fdb.map((e) => `${e.mac} ${e.dst} ${e.state}`).sort(), [
    `${macFromIp('100.64.8.20')} ${h2.ip} permanent`,
    `${macFromIp('100.64.8.30')} 198.18.0.9 permanent`,
    `${macFromIp('100.64.8.31')} 198.18.0.9 permanent`,
  ]);
  t.deepEqual((await neighbours(net1.netns)).map((n) => `${n.dst} ${n.lladdr}`).sort(), [
    `100.64.8.20 ${macFromIp('100.64.8.20')}`, `100.64.8.30 ${macFromIp('100.64.8.30')}`, `100.64.8.31 ${macFromIp('100.64.8.31')}`,
  ]);
});

test.serial('the kernel\'s own FDB entries are left alone', async (t) => {
  const own = async () => (await bridgeFdb(net1.netns)).filter((e) => e.master === 'br0' && e.state === 'permanent').map((e) => e.mac).sort();
  const before = await own();
  t.true(before.length >= 1); // vxlan0's own MAC as a bridge port
  await reconcile(h1.ctx, [{ vni: VNI, endpoints: [] }]);
  t.deepEqual(await own(), before);
  t.is((await bridgeFdb(net1.netns)).filter((e) => e.dst !== undefined).length, 0);
  t.is((await neighbours(net1.netns)).length, 0);
  t.deepEqual(counts(await reconcile(h1.ctx, desired1)), { added: 6, removed: 0, replaced: 0 });
});

test.serial('a restarted data plane reconciling the same state drops no traffic', async (t) => {
  // A steady ping across hosts while three "restarted agents" (fresh contexts,
  // no memory of what was programmed) each run a full start-up reconcile.
  const ping = execa('ip', ['netns', 'exec', sandbox1, 'ping', '-n', '-q', '-c', '60', '-i', '0.05', '-W', '1', '100.64.8.20'], { reject: false });
  const results = [];
  for (let i = 0; i < 3; i++) {
    const fresh = dataplaneContext({ nsPrefix: h1.netns, runner: h1.runner });
    const ensured = await ensureNetwork(fresh, { name: 'green', vni: VNI, subnet: '100.64.8.0/24', gateway: '100.64.8.1', vtep: h1.ip });
    results.push({ ...counts(await reconcile(fresh, desired1)), networkChanges: ensured.changes.length });
  }
  const out = await ping;
  t.deepEqual(results, Array(3).fill({ added: 0, removed: 0, replaced: 0, networkChanges: 0 }));
  t.is(out.exitCode, 0, out.stdout);
  t.regex(out.stdout, / 0% packet loss/);
});
