// With a 1400-byte underlay, the overlay MTU is 1350 (VXLAN costs 50 bytes):
// full-size packets cross hosts without fragmentation, one byte more does not
// fit, and a 1 MiB TCP transfer goes through.
import test from 'ava';
import { execa } from 'execa';
import { labUp, labDown, type LabState, type LabHost } from '../../deploy/lab/lab.ts';
import { weftOn, uniquePrefix } from '../helpers/weft-cli.ts';

const prefix = uniquePrefix('u');
let lab: LabState;

interface Endpoint { name: string; ip: string; netns: string }

async function sandbox(h: LabHost, name: string): Promise<Endpoint> {
  const run = await weftOn(h, ['run', '--detach', '--network', 'small', '--name', name, '--', 'sleep', '600']);
  if (run.exitCode !== 0) throw new Error(run.stderr);
  const list = JSON.parse((await weftOn(h, ['endpoints', '--network', 'small', '--json'])).stdout) as Endpoint[];
  return list.find((e) => e.name === name)!;
}

const inNetns = (netns: string, args: string[]) => execa('ip', ['netns', 'exec', netns, ...args], { reject: false, timeout: 30_000 });

test.before(async () => {
  lab = await labUp({ hosts: 2, prefix, mtu: 1400 });
});

test.after.always(async () => {
  await labDown(prefix);
});

test.serial('overlay MTU is the underlay MTU minus 50 and full-size packets cross hosts', async (t) => {
  const [h1, h2] = lab.hosts as [LabHost, LabHost];
  t.is((await weftOn(h1, ['network', 'create', 'small'])).exitCode, 0);
  const a = await sandbox(h1, 'a');
  const b = await sandbox(h2, 'b');
  const link = await inNetns(a.netns, ['ip', '-j', 'link', 'show', 'eth0']);
  t.is((JSON.parse(String(link.stdout)) as Array<{ mtu: number }>)[0]?.mtu, 1350);
  const fits = await inNetns(a.netns, ['ping', '-M', 'do', '-c', '3', '-W', '1', '-s', String(1350 - 28), b.ip]);
  t.is(fits.exitCode, 0, String(fits.stdout) + String(fits.stderr));
  const tooBig = await inNetns(a.netns, ['ping', '-M', 'do', '-c', '1', '-W', '1', '-s', String(1350 - 27), b.ip]);
  t.not(tooBig.exitCode, 0, 'one byte over the overlay MTU must not pass with DF set');
  const receiver = execa('ip', ['netns', 'exec', b.netns, 'socat', '-u', 'TCP-LISTEN:5002,reuseaddr', 'SYSTEM:wc -c'], { reject: false, timeout: 30_000 });
  await new Promise((resolve) => setTimeout(resolve, 500));
  const sender = await inNetns(a.netns, ['sh', '-c', `head -c 1048576 /dev/urandom | socat -u STDIN TCP:${b.ip}:5002`]);
  t.is(sender.exitCode, 0, String(sender.stderr));
  t.is(String((await receiver).stdout).trim(), '1048576');
});
