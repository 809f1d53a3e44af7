// The weft CNI plugin under real runtimes on a 2-host lab: containerd
// (`ctr run --cni`) and podman (CNI backend, runc), each run inside a lab
// host's network namespace and a private view of the CNI directories
// (test/helpers/cni-view.ts). Containers on two hosts reach each other and
// resolve each other and a weft service through weft's DNS; the runtime's DEL
// leaves nothing behind. A runtime that cannot start fails its test with the
// reason.
import test from 'ava';
import { join } from 'node:path';
import { labUp, labDown, labDir, type LabState, type LabHost } from '../../deploy/lab/lab.ts';
import { weftOn, uniquePrefix, eventually } from '../helpers/weft-cli.ts';
import { makeCniView, cachedResults } from '../helpers/cni-view.ts';
import { startLabContainerd, stopLabContainerd, ctrRunCni, ctrOn, type LabContainerd } from '../helpers/lab-containerd.ts';
import { startLabPodman, stopLabPodman, podmanOn, podmanRun, PODMAN_IMAGE, type LabPodman } from '../helpers/lab-podman.ts';

const prefix = uniquePrefix('r');
let lab: LabState;
const stops: Array<() => Promise<void>> = [];

interface Endpoint { name: string; network: string; ip: string }
interface CachedResult { result?: { ips?: Array<{ address: string }>; dns?: { nameservers?: string[] } } }

async function ok(h: LabHost, args: string[]): Promise<string> {
  const r = await weftOn(h, args);
  if (r.exitCode !== 0) throw new Error(`weft ${args.join(' ')}: ${r.stdout}${r.stderr}`);
  return r.stdout;
}

const endpoints = async (h: LabHost): Promise<Endpoint[]> => JSON.parse(await ok(h, ['endpoints', '--network', 'blue', '--json'])) as Endpoint[];
const endpointNamed = (h: LabHost, name: string) => eventually(`${name} to be listed on ${h.name}`, async () => (await endpoints(h)).find((e) => e.name === name), 60_000);

function conflist(h: LabHost, name: string, services: string[] = []): object {
  return { cniVersion: '1.0.0', name: 'weftnet', plugins: [{ type: 'weft', network: 'blue', socket: h.socket, args: { cni: { name, services } } }] };
}

/** A shell loop in the container: retries CMD once a second, up to 60 times (FDB and DNS converge in the background). */
const retry = (cmd: string): string => `i=0; until ${cmd}; do i=$((i+1)); [ $i -ge 60 ] && exit 1; sleep 1; done`;

test.before(async () => {
  lab = await labUp({ hosts: 2, prefix });
  await ok(lab.hosts[0]!, ['network', 'create', 'blue']);
  await ok(lab.hosts[0]!, ['service', 'create', 'api', '--network', 'blue', '--port', '80/tcp']);
});

test.after.always(async () => {
  for (const stop of stops.reverse()) await stop().catch(() => undefined);
  await labDown(prefix);
});

test.serial('containerd: ctr run --cni on two hosts, ping and DNS through weft, DEL leaves nothing', async (t) => {
  const [h1, h2] = [lab.hosts[0]!, lab.hosts[1]!];
  const started: LabContainerd[] = [];
  stops.push(async () => { for (const cd of started) await stopLabContainerd(cd); });
  started.push(await startLabContainerd(h1), await startLabContainerd(h2));
  const [cd1, cd2] = started as [LabContainerd, LabContainerd];

  const view1 = makeCniView(join(labDir(prefix), 'view-ctr-a'), h1, conflist(h1, 'ctr-a', ['api']));
  const a = ctrRunCni(cd1, view1, 'a', ['sleep', '600']);
  const ctrA = await Promise.race([endpointNamed(h1, 'ctr-a'), a.then((r) => {
    throw new Error(`ctr run a exited ${String(r.exitCode)} before ctr-a was listed:\n${String(r.stdout)}\n${String(r.stderr)}`);
  })]);
  // The agent lists the endpoint before the plugin has handed its result to ctr, which then caches it.
  const cached = await eventually('ctr to cache the ADD result', async () => {
    const results = Object.values(cachedResults(view1)) as CachedResult[];
    return results.length > 0 ? results : undefined;
  });
  t.deepEqual(cached.map((c) => c.result?.ips?.[0]?.address.split('/')[0]), [ctrA.ip], 'ctr cached the ADD result weft returned');
  const nameserver = cached[0]?.result?.dns?.nameservers?.[0] ?? '';
  t.regex(nameserver, /^\d+\.\d+\.\d+\.\d+$/, 'the result names weft\'s resolver');
  const vip = (JSON.parse(await ok(h1, ['service', 'inspect', 'api'])) as { vip: string }).vip;

  const view2 = makeCniView(join(labDir(prefix), 'view-ctr-b'), h2, conflist(h2, 'ctr-b'));
  const b = await ctrRunCni(cd2, view2, 'b', ['sh', '-c', [
    retry(`ping -c 1 -W 1 ${ctrA.ip} >/dev/null`),
    retry(`nslookup ctr-a ${nameserver} | grep -q 'Address.*${ctrA.ip}'`),
    retry(`nslookup api ${nameserver} | grep -q 'Address.*${vip}'`),
    'echo reached',
  ].join(' && ')]);
  t.is(b.exitCode, 0, `${String(b.stdout)}\n${String(b.stderr)}`);
  t.regex(String(b.stdout), /reached/);
  t.false((await endpoints(h2)).some((e) => e.name === 'ctr-b'), 'ctr run --rm ran DEL on exit: ctr-b is gone');

  t.is((await ctrOn(cd1, ['tasks', 'kill', '-s', 'SIGKILL', 'a'])).exitCode, 0);
  const aDone = await a;
  t.not(aDone.exitCode, 0, 'a was killed');
  await eventually('ctr-a to leave the endpoint table', async () => !(await endpoints(h1)).some((e) => e.name === 'ctr-a'), 60_000);
  for (const h of [h1, h2]) await eventually(`doctor to be clean on ${h.name}`, async () => (await weftOn(h, ['doctor'])).exitCode === 0, 60_000);
});

test.serial('podman: containers on two hosts reach and resolve each other (name, --network-alias) and a service; DEL leaves nothing', async (t) => {
  const [h1, h2] = [lab.hosts[0]!, lab.hosts[1]!];
  // podman names the endpoint (K8S_POD_NAME in CNI_ARGS) and sends --network-alias through the aliases capability.
  const podmanConflist = (h: LabHost): object => ({ cniVersion: '1.0.0', name: 'weftpod', plugins: [{ type: 'weft', network: 'blue', socket: h.socket, capabilities: { aliases: true } }] });
  const started: LabPodman[] = [];
  stops.push(async () => { for (const p of started) await stopLabPodman(p); });
  started.push(await startLabPodman(h1, makeCniView(join(labDir(prefix), 'view-pod-1'), h1, podmanConflist(h1))));
  started.push(await startLabPodman(h2, makeCniView(join(labDir(prefix), 'view-pod-2'), h2, podmanConflist(h2))));
  const [p1, p2] = started as [LabPodman, LabPodman];

  const a = await podmanRun(p1, 'weftpod', ['-d', '--name', 'pod-a', '--network-alias', 'pod-a-alias', PODMAN_IMAGE, 'sleep', '600']);
  t.is(a.exitCode, 0, String(a.stderr));
  const podA = await endpointNamed(h1, 'pod-a');
  const vip = (JSON.parse(await ok(h1, ['service', 'inspect', 'api'])) as { vip: string }).vip;

  // No nameserver given: podman wrote resolv.conf from the result's dns (nameservers, search).
  const b = await podmanRun(p2, 'weftpod', ['--name', 'pod-b', PODMAN_IMAGE, 'sh', '-c', [
    'grep -m1 ^nameserver /etc/resolv.conf',
    'grep -m1 ^search /etc/resolv.conf',
    retry(`ping -c 1 -W 1 ${podA.ip} >/dev/null`),
    retry(`nslookup pod-a | grep -q 'Address.*${podA.ip}'`),
    retry(`nslookup pod-a-alias | grep -q 'Address.*${podA.ip}'`),
    retry(`nslookup api | grep -q 'Address.*${vip}'`),
    'echo reached',
  ].join(' && ')]);
  t.is(b.exitCode, 0, `${String(b.stdout)}\n${String(b.stderr)}`);
  t.regex(String(b.stdout), /reached/);
  const [resolver, search] = String(b.stdout).split('\n');
  t.regex(resolver ?? '', /^nameserver \d+\.\d+\.\d+\.\d+$/, 'weft\'s resolver comes first in the resolv.conf podman wrote');
  t.regex(search ?? '', /^search blue\b/, 'and the network is the first search domain');
  t.false((await endpoints(h2)).some((e) => e.name === 'pod-b'), 'podman run --rm ran DEL on exit');

  t.is((await podmanOn(p1, ['rm', '--force', '--time', '0', 'pod-a'])).exitCode, 0);
  t.false((await endpoints(h1)).some((e) => e.name === 'pod-a'), 'podman rm ran DEL');
  for (const h of [h1, h2]) await eventually(`doctor to be clean on ${h.name}`, async () => (await weftOn(h, ['doctor'])).exitCode === 0, 60_000);
});
