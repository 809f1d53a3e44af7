// weft's Docker plugin against a real dockerd on a lab host (test/helpers/lab-docker.ts).
import test from 'ava';
import { labUp, labDown, type LabState } from '../../deploy/lab/lab.ts';
import { uniquePrefix, weftOn } from '../helpers/weft-cli.ts';
import { startLabDocker, stopLabDocker, dockerOn, importBusybox, type LabDocker } from '../helpers/lab-docker.ts';

const prefix = uniquePrefix('d');
let lab: LabState;
let docker: LabDocker | undefined;
let blue: { subnet: string; gateway: string; vni: number };

test.before(async () => {
  lab = await labUp({ hosts: 1, prefix });
  docker = await startLabDocker(lab.hosts[0]!);
  const created = await weftOn(lab.hosts[0]!, ['network', 'create', 'blue']);
  if (created.exitCode !== 0) throw new Error(created.stderr);
  blue = JSON.parse((await weftOn(lab.hosts[0]!, ['network', 'inspect', 'blue'])).stdout) as typeof blue;
});

test.after.always(async () => {
  if (docker) await stopLabDocker(docker);
  await labDown(prefix);
});

const create = (...args: string[]) => dockerOn(docker!, ['network', 'create', '-d', 'weft', '--ipam-driver', 'weft', ...args]);

test.serial('a Docker network on a weft network\'s subnet takes that subnet; rm removes only Docker\'s view', async (t) => {
  const r = await create('--subnet', blue.subnet, 'blue');
  t.is(r.exitCode, 0, String(r.stderr));
  const [inspected] = JSON.parse(String((await dockerOn(docker!, ['network', 'inspect', 'blue'])).stdout)) as Array<{ IPAM: { Config: Array<{ Subnet: string }> } }>;
  t.deepEqual(inspected?.IPAM.Config.map((c) => c.Subnet), [blue.subnet]);
  t.is((await dockerOn(docker!, ['network', 'rm', 'blue'])).exitCode, 0);
  t.is((await weftOn(lab.hosts[0]!, ['network', 'inspect', 'blue'])).exitCode, 0, 'the weft network stays');
});

test.serial('what weft cannot honour is refused with a clear error', async (t) => {
  t.regex(String((await create('nosubnet')).stderr), /give the weft network's subnet with --subnet/);
  t.regex(String((await create('--subnet', '10.99.0.0/24', 'other')).stderr), /no weft network has subnet 10\.99\.0\.0\/24/);
  t.regex(String((await create('--subnet', blue.subnet, '--internal', 'b2')).stderr), /is not internal: drop --internal/);
  t.regex(String((await create('--subnet', blue.subnet, '-o', `vni=${blue.vni + 1}`, 'b3')).stderr), new RegExp(`conflicts with weft network "blue", which has VNI ${blue.vni}`));
  t.regex(String((await create('--subnet', blue.subnet, '-o', 'color=red', 'b4')).stderr), /unknown -o option "color"/);
  const wrongGateway = blue.gateway.replace(/\.\d+$/, '.9');
  t.regex(String((await create('--subnet', blue.subnet, '--gateway', wrongGateway, 'b5')).stderr), new RegExp(`--gateway ${wrongGateway} conflicts with weft network "blue", whose gateway is ${blue.gateway}`));
  t.is((await create('--subnet', blue.subnet, '--gateway', blue.gateway, 'b6')).exitCode, 0, 'its own gateway is fine');
  t.is((await dockerOn(docker!, ['network', 'rm', 'b6'])).exitCode, 0);
  const networks = String((await dockerOn(docker!, ['network', 'ls', '--format', '{{.Name}}'])).stdout).split('\n');
  t.false(networks.some((n) => /^(nosubnet|other|b2|b3|b4|b5)$/.test(n)), 'none was created');
});

test.serial('a container on a weft network is refused clearly (endpoints are not implemented yet)', async (t) => {
  t.is((await create('--subnet', blue.subnet, 'blue')).exitCode, 0);
  const image = await importBusybox(docker!);
  const r = await dockerOn(docker!, ['run', '--rm', '--network', 'blue', image, 'true']);
  t.not(r.exitCode, 0);
  t.regex(String(r.stderr), /endpoint addresses from weft are not supported yet/);
  t.is((await dockerOn(docker!, ['network', 'rm', 'blue'])).exitCode, 0);
});
