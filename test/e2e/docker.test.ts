// weft's Docker plugin against a real dockerd on a lab host (test/helpers/lab-docker.ts).
import test from 'ava';
import { labUp, labDown, type LabState } from '../../deploy/lab/lab.ts';
import { uniquePrefix } from '../helpers/weft-cli.ts';
import { startLabDocker, stopLabDocker, dockerOn, type LabDocker } from '../helpers/lab-docker.ts';

const prefix = uniquePrefix('d');
let lab: LabState;
let docker: LabDocker | undefined;

test.before(async () => {
  lab = await labUp({ hosts: 1, prefix });
  docker = await startLabDocker(lab.hosts[0]!);
});

test.after.always(async () => {
  if (docker) await stopLabDocker(docker);
  await labDown(prefix);
});

test.serial('dockerd finds the host agent\'s plugin through its private /run/docker/plugins and activates it', async (t) => {
  const r = await dockerOn(docker!, ['network', 'create', '-d', 'weft', '--ipam-driver', 'weft', 'blue']);
  // Activation and both capability calls succeeded: Docker got as far as asking weft's IPAM for a pool.
  t.not(r.exitCode, 0);
  t.regex(String(r.stderr), /does not implement IpamDriver\.RequestPool/, String(r.stderr));
});
