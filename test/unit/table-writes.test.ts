// The gateway and publish tables are written whole, and only when what the
// agent would write differs from its last successful write (or a repair
// forces it): a sandbox change that leaves a table as it was costs no process.
import test from 'ava';
import type { Runner } from '../../dataplane/exec.ts';
import { CONTAINER_ROUTE_PROTO } from '../../dataplane/container-routes.ts';
import { egressPlane } from '../../dataplane/egress.ts';
import { publishPlane } from '../../dataplane/publish.ts';
import { LastWritten } from '../../dataplane/last-written.ts';

const BRIDGE_UP = JSON.stringify([{ ifindex: 5, ifname: 'weft_gw', flags: ['UP'], operstate: 'UP', mtu: 1500, address: '02:00:00:00:00:01',
  linkinfo: { info_kind: 'bridge' }, addr_info: [{ family: 'inet', local: '198.19.255.1', prefixlen: 24 }] }]);

/** A host that answers every command; `nft` fails while `failNft` is set. Records the nft scripts it was given. */
function recordingHost(): { runner: Runner; nftScripts: string[]; failNft: { on: boolean } } {
  const nftScripts: string[] = [];
  const failNft = { on: false };
  const runner: Runner = async (file, args, input) => {
    if (file === 'nft') {
      nftScripts.push(input ?? '');
      return failNft.on ? { exitCode: 1, stdout: '', stderr: 'Error: Could not process rule' } : { exitCode: 0, stdout: '', stderr: '' };
    }
    if (file === 'ip' && args.includes('addr')) return { exitCode: 0, stdout: BRIDGE_UP, stderr: '' };
    return { exitCode: 0, stdout: '', stderr: '' };
  };
  return { runner, nftScripts, failNft };
}

const spec = { subnet: '198.19.255.0/24', blocked: ['100.64.0.0/10'] };

test('the gateway table is written again only when it changes, when forced, or after a failed write', async (t) => {
  const host = recordingHost();
  const plane = egressPlane({ nsPrefix: 'tw', runner: host.runner }, spec);
  await plane.ensure({ noEgress: [] });
  await plane.ensure({ noEgress: [] });
  t.is(host.nftScripts.length, 1, 'the same table is not written twice');
  await plane.ensure({ noEgress: ['198.19.255.7'] });
  t.is(host.nftScripts.length, 2, 'a changed table is written');
  t.regex(host.nftScripts[1]!, /elements = \{ 198\.19\.255\.7 \}/);
  await plane.ensure({ noEgress: ['198.19.255.7'] }, true);
  t.is(host.nftScripts.length, 3, 'a forced write goes to the kernel');
  host.failNft.on = true;
  await t.throwsAsync(plane.ensure({ noEgress: [] }), { message: /egress table/ });
  host.failNft.on = false;
  await plane.ensure({ noEgress: [] });
  t.is(host.nftScripts.length, 5, 'after a failed write the next one is not skipped');
});

test('the publish table is written again only when it changes or when forced', async (t) => {
  const host = recordingHost();
  const plane = publishPlane({ nsPrefix: 'tw', runner: host.runner });
  const rule = { hostIp: '0.0.0.0', hostPort: 8080, protocol: 'tcp' as const, targetIp: '198.19.255.2', targetPort: 80 };
  await plane.apply([rule], spec.subnet);
  await plane.apply([rule], spec.subnet);
  t.is(host.nftScripts.length, 1);
  await plane.apply([], spec.subnet);
  await plane.apply([], spec.subnet, true);
  t.is(host.nftScripts.length, 3);
});

test('LastWritten forgets what it wrote when a write fails', async (t) => {
  const written = new LastWritten();
  t.true(await written.write('a', false, async () => undefined));
  t.false(await written.write('a', false, async () => undefined));
  await t.throwsAsync(written.write('b', false, async () => { throw new Error('kernel said no'); }));
  t.true(await written.write('a', false, async () => undefined), 'after the failure the kernel may hold anything');
});

test('the host routes to CNI containers are synced again only when they change or when forced', async (t) => {
  const reads: string[][] = [];
  const batches: string[] = [];
  const runner: Runner = async (file, args, input) => {
    if (file === 'ip' && args.includes('route')) reads.push([...args]);
    if (file === 'ip' && args.includes('-batch')) batches.push(input ?? '');
    return { exitCode: 0, stdout: file === 'ip' && args.includes('show') ? '[]' : '', stderr: '' };
  };
  const plane = egressPlane({ nsPrefix: 'tw', runner }, spec);
  const route = { ip: '100.64.0.5', via: '198.19.255.3' };
  await plane.syncContainerRoutes([route]);
  await plane.syncContainerRoutes([route]);
  t.is(reads.length, 1, 'the same set is not read and written twice');
  t.is(batches.length, 1);
  const second = { ip: '100.64.0.6', via: '198.19.255.4' };
  await plane.syncContainerRoutes([route, second]);
  await plane.syncContainerRoutes([second]);
  t.is(reads.length, 1, 'a change is diffed against the last write: one command, no listing');
  t.deepEqual(batches.slice(1), [
    `route replace 100.64.0.6/32 via 198.19.255.4 dev weft_gw proto ${CONTAINER_ROUTE_PROTO}\n`,
    `route del 100.64.0.5/32 proto ${CONTAINER_ROUTE_PROTO}\n`,
  ]);
  await plane.syncContainerRoutes([second], true);
  t.is(reads.length, 2, 'a forced sync reads the kernel');
});

test('after a failed container route sync the next one reads the kernel', async (t) => {
  let reads = 0;
  let failBatch = true;
  const runner: Runner = async (file, args) => {
    if (args.includes('show')) reads++;
    if (args.includes('-batch') && failBatch) return { exitCode: 1, stdout: '', stderr: 'RTNETLINK answers: No such process\nCommand failed -:1\n' };
    return { exitCode: 0, stdout: args.includes('show') ? '[]' : '', stderr: '' };
  };
  const plane = egressPlane({ nsPrefix: 'tw', runner }, spec);
  await t.throwsAsync(plane.syncContainerRoutes([{ ip: '100.64.0.5', via: '198.19.255.3' }]));
  failBatch = false;
  await plane.syncContainerRoutes([{ ip: '100.64.0.6', via: '198.19.255.4' }]);
  t.is(reads, 2);
});
