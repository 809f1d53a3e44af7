// Egress: a sandbox on a non-internal network reaches addresses outside the
// overlay (here: another lab host's underlay address) through the host's
// egress bridge, masqueraded; an --internal network's sandbox cannot; egress
// never carries traffic into another overlay network.
import test from 'ava';
import { execa } from 'execa';
import { labUp, labDown, type LabState, type LabHost } from '../../deploy/lab/lab.ts';
import { weftOn, uniquePrefix, eventually } from '../helpers/weft-cli.ts';

const prefix = uniquePrefix('g');
let lab: LabState;

interface Endpoint { name: string; ip: string; netns: string }

async function sandbox(h: LabHost, network: string, name: string): Promise<Endpoint> {
  const run = await weftOn(h, ['run', '--detach', '--network', network, '--name', name, '--', 'sleep', '600']);
  if (run.exitCode !== 0) throw new Error(run.stderr);
  return (JSON.parse((await weftOn(h, ['endpoints', '--network', network, '--json'])).stdout) as Endpoint[]).find((e) => e.name === name)!;
}

const ping = (netns: string, ip: string) => execa('ip', ['netns', 'exec', netns, 'ping', '-c', '2', '-W', '1', ip], { reject: false });

test.before(async () => {
  lab = await labUp({ hosts: 2, prefix });
});

test.after.always(async () => {
  if (process.env['WEFT_KEEP_LAB'] !== '1') await labDown(prefix);
});

test.serial('non-internal networks reach the outside through NAT; internal ones do not; egress never enters another network', async (t) => {
  const [h1, h2] = lab.hosts as [LabHost, LabHost];
  t.is((await weftOn(h1, ['network', 'create', 'pub'])).exitCode, 0);
  t.is((await weftOn(h1, ['network', 'create', 'priv', '--internal'])).exitCode, 0);
  const p = await sandbox(h1, 'pub', 'p');
  const q = await sandbox(h1, 'priv', 'q');
  const outside = h2.ip;
  // A fresh veth takes a moment to carry traffic: wait for the positive case, then test the negatives.
  const reached = await eventually('pub to reach another host\'s address', async () => (await ping(p.netns, outside)).exitCode === 0, 10_000).catch(async (error: Error) => {
    const routes = await execa('ip', ['netns', 'exec', p.netns, 'ip', 'route'], { reject: false });
    const out = await ping(p.netns, outside);
    t.log(`routes in ${p.netns}:\n${String(routes.stdout)}${String(routes.stderr)}\nping ${outside}: ${String(out.stdout)}${String(out.stderr)}`);
    throw error;
  });
  t.true(reached);
  t.not((await ping(q.netns, outside)).exitCode, 0, 'priv has no way out');
  t.not((await ping(p.netns, q.ip)).exitCode, 0, 'pub cannot reach priv through egress');
  // Every sandbox has a gateway leg (for DNS), also priv's: but it carries nothing out of the host,
  // even when the sandbox routes through it on its own, and sandboxes never meet on it.
  const gateway = '198.19.255.1';
  const qGateway = await execa('ip', ['-n', q.netns, '-j', 'addr', 'show', 'dev', 'egress0']);
  const qEgressIp = (JSON.parse(String(qGateway.stdout)) as { addr_info: { local: string }[] }[])[0]!.addr_info[0]!.local;
  t.is((await execa('ip', ['-n', q.netns, 'route', 'replace', 'default', 'via', gateway, 'dev', 'egress0'], { reject: false })).exitCode, 0);
  t.not((await ping(q.netns, outside)).exitCode, 0, 'priv cannot leave through the gateway bridge even with its own default route');
  t.not((await ping(p.netns, qEgressIp)).exitCode, 0, 'sandboxes cannot reach each other on the gateway bridge');
  const agentPort = await execa('ip', ['netns', 'exec', p.netns, 'socat', '-T', '2', '-', `TCP:${gateway}:2377,connect-timeout=2`], { reject: false, input: '' });
  t.not(agentPort.exitCode, 0, 'the host\'s own services (here the admission port) are closed to sandboxes');
  await execa('ip', ['-n', q.netns, 'route', 'replace', 'default', 'via', q.ip.replace(/\.\d+$/, '.1'), 'dev', 'eth0']);
  // The masquerade makes the source the host's own address: h2 sees h1, not a sandbox address.
  const doctor = await weftOn(h1, ['doctor']);
  t.is(doctor.exitCode, 0, doctor.stdout);
});
