// Bandwidth limits through weft's own CNI plugin (the stock `bandwidth` plugin
// cannot shape after weft: cni-chaining.test.ts). The conflist declares the
// `bandwidth` capability on weft and the chain passes runtimeConfig.bandwidth
// as libcni does for Kubernetes' ingress/egress-bandwidth annotations
// (test/helpers/cni-chain.ts). iperf3 between two containers on one weft
// network measures the limits; CHECK reads drift; DEL, a container gone without
// DEL and an agent restart leave no qdisc nor ifb, and `weft doctor` sees a
// leftover ifb while there is one.
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { execa } from 'execa';
import { labUp, labDown, restartAgent, waitForAgent, type LabState, type LabHost } from '../../deploy/lab/lab.ts';
import { weftOn, eventually } from '../helpers/weft-cli.ts';
import { chainAdd, chainCheck, chainDel, CniChainError, type ChainCall, type Conflist } from '../helpers/cni-chain.ts';

const prefix = `bw${randomBytes(3).toString('hex')}`;
let lab: LabState;
const CONTAINERS = ['shaped', 'free', 'peer', 'gone'];
const EGRESS = 1_000_000; // bits/s out of the container
const INGRESS = 2_000_000; // bits/s into it
const BURST = 100_000; // bits: above one 1450-byte packet, far below what a test run sends

const list = (h: LabHost): Conflist => ({
  cniVersion: '1.0.0',
  name: 'weftbw',
  plugins: [{ type: 'weft', network: 'blue', socket: h.socket, capabilities: { bandwidth: true } }],
});
const call = (h: LabHost, container: string, bandwidth?: object): ChainCall => ({
  containerId: container, hostNetns: h.netns, netns: `/run/netns/${prefix}-${container}`, ifname: 'eth0', ...(bandwidth ? { runtimeConfig: { bandwidth } } : {}),
});
const limits = { ingressRate: INGRESS, ingressBurst: BURST, egressRate: EGRESS, egressBurst: BURST };

const addressOf = (result: Record<string, unknown>): string => ((result['ips'] as Array<{ address: string }>)[0]?.address ?? '').split('/')[0] ?? '';
/** The network's namespace on the host: `<ns prefix>-n<VNI>` (dataplane/names.ts). */
async function networkNetns(h: LabHost): Promise<string> {
  const names = String((await execa('ip', ['netns', 'list'])).stdout).split('\n').map((l) => l.split(' ')[0] ?? '');
  const found = names.find((n) => new RegExp(`^${h.netns}-n[0-9]+$`).test(n));
  if (!found) throw new Error(`no network namespace of ${h.netns}`);
  return found;
}
const ifbs = async (netns: string): Promise<string[]> =>
  (JSON.parse(String((await execa('ip', ['-n', netns, '-j', 'link', 'show', 'type', 'ifb'])).stdout) || '[]') as Array<{ ifname: string }>).map((l) => l.ifname);
const qdiscs = async (netns: string): Promise<string> => String((await execa('tc', ['-n', netns, 'qdisc', 'show'])).stdout);

/** Receiver-side throughput in bits/s of a 3 s iperf3 run from the container (reverse: into it). */
async function iperf(container: string, server: string, reverse: boolean): Promise<number> {
  const r = await execa('ip', ['netns', 'exec', `${prefix}-${container}`, 'iperf3', '-c', server, '-t', '3', '-J', ...(reverse ? ['-R'] : [])], { reject: false, timeout: 60_000 });
  if (r.exitCode !== 0) throw new Error(`iperf3 from ${container} failed: ${r.stdout}${r.stderr}`);
  return (JSON.parse(String(r.stdout)) as { end: { sum_received: { bits_per_second: number } } }).end.sum_received.bits_per_second;
}

test.before(async () => {
  lab = await labUp({ hosts: 1, prefix });
  const r = await weftOn(lab.hosts[0]!, ['network', 'create', 'blue']);
  if (r.exitCode !== 0) throw new Error(r.stderr);
  for (const name of CONTAINERS) await execa('ip', ['netns', 'add', `${prefix}-${name}`]);
});

test.after.always(async () => {
  for (const name of CONTAINERS) await execa('ip', ['netns', 'delete', `${prefix}-${name}`], { reject: false });
  await labDown(prefix); // kills the iperf3 server in the lab's namespaces too
});

test.serial('limits from the bandwidth capability shape both directions; CHECK sees a lost qdisc; DEL leaves no qdisc nor ifb', async (t) => {
  const h1 = lab.hosts[0]!;
  const peerResult = await chainAdd(list(h1), call(h1, 'peer'));
  const peer = addressOf(peerResult);
  const server = execa('ip', ['netns', 'exec', `${prefix}-peer`, 'iperf3', '-s'], { reject: false });
  t.teardown(() => { server.kill('SIGKILL'); });

  const shapedCall = call(h1, 'shaped', limits);
  const result = await chainAdd(list(h1), shapedCall);
  t.deepEqual((result['dns'] as { search?: string[] }).search, ['blue'], 'the network is the search domain');
  const freeResult = await chainAdd(list(h1), call(h1, 'free'));

  await eventually('the iperf3 server to answer', async () => (await execa('ip', ['netns', 'exec', `${prefix}-free`, 'iperf3', '-c', peer, '-t', '1'], { reject: false, timeout: 30_000 })).exitCode === 0, 60_000);
  const egress = await iperf('shaped', peer, false);
  const ingress = await iperf('shaped', peer, true);
  const free = await iperf('free', peer, false);
  t.log(`egress ${Math.round(egress / 1000)} kbit/s (limit ${EGRESS / 1000}), ingress ${Math.round(ingress / 1000)} kbit/s (limit ${INGRESS / 1000}), unlimited ${Math.round(free / 1000)} kbit/s`);
  t.true(egress < 3 * EGRESS, `egress ${egress} bit/s is near its ${EGRESS} limit`);
  t.true(ingress < 3 * INGRESS, `ingress ${ingress} bit/s is near its ${INGRESS} limit`);
  t.true(free > 3 * INGRESS, `without limits ${free} bit/s is well above them`);

  await chainCheck(list(h1), shapedCall, result);
  const netns = await networkNetns(h1);
  t.is((await ifbs(netns)).length, 1, 'one ifb, for the shaped container\'s egress');
  const veth = /qdisc tbf 1: dev (v[0-9a-f]{12}) root/.exec(await qdiscs(netns))?.[1] ?? '';
  t.regex(veth, /^v[0-9a-f]{12}$/, 'the tbf is on the network-side veth');
  await execa('tc', ['-n', netns, 'qdisc', 'del', 'dev', veth, 'root']);
  const drift = await t.throwsAsync(chainCheck(list(h1), shapedCall, result), { instanceOf: CniChainError });
  t.regex(drift?.output ?? '', /"code":101.*ingress limit of 2000000 bit\/s is missing/);

  await chainDel(list(h1), shapedCall, result);
  await chainDel(list(h1), call(h1, 'free'), freeResult);
  t.deepEqual(await ifbs(netns), [], 'DEL removed the ifb');
  t.notRegex(await qdiscs(netns), /tbf|ingress/, 'no tbf or ingress qdisc left');
  server.kill('SIGKILL');
  await chainDel(list(h1), call(h1, 'peer'), peerResult);
  await eventually('doctor to be clean', async () => (await weftOn(h1, ['doctor'])).exitCode === 0, 60_000);
});

test.serial('bad limits are refused with code 7 and leave nothing behind', async (t) => {
  const h1 = lab.hosts[0]!;
  const noBurst = await t.throwsAsync(chainAdd(list(h1), call(h1, 'shaped', { egressRate: EGRESS })), { instanceOf: CniChainError });
  t.regex(noBurst?.output ?? '', /"code":7.*egressBurst must be set too/);
  // Checked by the agent, which knows the link's MTU: a burst below one packet would drop every full-size one.
  const tiny = await t.throwsAsync(chainAdd(list(h1), call(h1, 'shaped', { egressRate: EGRESS, egressBurst: 1600 })), { instanceOf: CniChainError });
  t.regex(tiny?.output ?? '', /"code":7.*smaller than one full-size packet/);
  const r = await weftOn(h1, ['endpoints', '--json']);
  t.deepEqual(JSON.parse(r.stdout), [], 'the refused ADD was rolled back');
  // A runtime answers a failed ADD with DEL, with the same limits: it must go through, or the
  // runtime retries it forever and never frees the container's namespace.
  await t.notThrowsAsync(chainDel(list(h1), call(h1, 'shaped', { egressRate: EGRESS }), undefined));
  await t.notThrowsAsync(chainDel(list(h1), call(h1, 'shaped', { egressRate: 10 ** 15, egressBurst: 1 }), undefined));
  await eventually('doctor to be clean', async () => (await weftOn(h1, ['doctor'])).exitCode === 0, 60_000);
});

test.serial('a container gone without DEL leaves an ifb: doctor reports it, the agent removes it when it starts', async (t) => {
  let h1 = lab.hosts[0]!;
  const goneCall = call(h1, 'gone', limits);
  const result = await chainAdd(list(h1), goneCall);
  const netns = await networkNetns(h1);
  const [ifb] = await ifbs(netns);
  t.regex(ifb ?? '', /^ifb[0-9a-f]{12}$/);
  // The runtime lost the container: its namespace goes, and the veth with it; the ifb does not.
  await execa('ip', ['netns', 'delete', `${prefix}-gone`]);
  const doctor = await eventually('doctor to report the leftover ifb', async () => {
    const d = await weftOn(h1, ['doctor']);
    return d.stdout.includes(ifb!) ? d.stdout : undefined;
  }, 60_000);
  t.regex(doctor, /bandwidth shaping left by a sandbox that is gone/);
  process.kill(h1.pid, 'SIGKILL');
  h1 = restartAgent(prefix, 'h1');
  lab.hosts = [h1];
  await waitForAgent(h1);
  await eventually('the restarted agent to remove the ifb', async () => (await ifbs(netns)).length === 0, 60_000);
  // The runtime's DEL, when it comes, still succeeds and releases the attachment.
  await chainDel(list(h1), goneCall, result);
  await eventually('doctor to be clean', async () => (await weftOn(h1, ['doctor'])).exitCode === 0, 60_000);
  t.pass();
});
