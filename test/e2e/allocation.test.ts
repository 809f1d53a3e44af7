// Conflict-free allocation through the real agents: hosts that own no space
// yet ask owners over /weft/alloc/1, concurrently, and never hand out a VNI,
// subnet or address twice; a requested VNI that is taken is refused.
import test from 'ava';
import { labUp, labDown, callAgent, type LabState } from '../../deploy/lab/lab.ts';
import { uniquePrefix } from '../helpers/weft-cli.ts';

const prefix = uniquePrefix('a');
let lab: LabState;

test.before(async () => {
  lab = await labUp({ hosts: 3, prefix });
});

test.after.always(async () => {
  await labDown(prefix);
});

interface NetworkInfo { name: string; vni: number; subnet: string }

test.serial('networks created concurrently on every host get distinct VNIs and subnets', async (t) => {
  const created = await Promise.all(
    lab.hosts.flatMap((h) => Array.from({ length: 6 }, (_, i) => callAgent<NetworkInfo>(h, 'NetworkCreate', { name: `n-${h.name}-${i}`, subnet: '', vni: 0, internal: false }))),
  );
  t.is(created.length, 18);
  t.is(new Set(created.map((n) => n.vni)).size, 18, 'VNIs are distinct');
  t.is(new Set(created.map((n) => n.subnet)).size, 18, 'subnets are distinct');
});

test.serial('a requested VNI that another host holds is refused', async (t) => {
  // Asked of the host that made it: another host may not have heard of it yet (the refusal comes
  // from the VNI's owner, not from the asking host's table).
  const taken = (await callAgent<{ networks: NetworkInfo[] }>(lab.hosts[1]!, 'NetworkList', {})).networks.find((n) => n.name === 'n-h2-0');
  if (!taken) throw new Error('h2 does not list the network n-h2-0 it made');
  const error = await t.throwsAsync(callAgent(lab.hosts[2]!, 'NetworkCreate', { name: 'dup-vni', subnet: '', vni: taken.vni, internal: false }));
  t.regex(error!.message, /in use/);
});

test.serial('sandboxes started concurrently on every host get distinct addresses on one network', async (t) => {
  interface Sandbox { endpoints: Array<{ ip: string }> }
  const sandboxes = await Promise.all(
    lab.hosts.flatMap((h) => Array.from({ length: 4 }, (_, i) => callAgent<Sandbox>(h, 'SandboxCreate', { networks: ['n-h1-0'], name: `s-${h.name}-${i}`, aliases: [], netns: '', command: [] }))),
  );
  const ips = sandboxes.map((s) => s.endpoints[0]!.ip);
  t.is(new Set(ips).size, 12, `addresses are distinct: ${ips.join(' ')}`);
});
