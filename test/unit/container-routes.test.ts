// The host routes to CNI containers' overlay addresses (dataplane/container-routes.ts):
// the set in the kernel is made exactly the wanted one, touching only weft's
// own routes (its protocol number), and bad addresses are refused before any command.
import test from 'ava';
import { syncContainerRoutes, CONTAINER_ROUTE_PROTO } from '../../dataplane/container-routes.ts';
import type { DataplaneContext } from '../../dataplane/context.ts';
import type { RunResult } from '../../dataplane/exec.ts';

function fakeContext(present: Array<{ dst: string; gateway: string }>) {
  const commands: Array<{ args: readonly string[]; input: string | undefined }> = [];
  const runner = async (_file: string, args: readonly string[], input?: string): Promise<RunResult> => {
    commands.push({ args, input });
    const listing = args.includes('show');
    return { exitCode: 0, stdout: listing ? JSON.stringify(present) : '', stderr: '' } as RunResult;
  };
  const ctx: DataplaneContext = { nsPrefix: 'weft', runner };
  return { ctx, commands };
}

test('only weft\'s routes are listed; a stale one is replaced, one no longer wanted deleted, a missing one added', async (t) => {
  const { ctx, commands } = fakeContext([
    { dst: '100.64.0.2', gateway: '172.31.255.2' },
    { dst: '100.64.0.3', gateway: '172.31.255.9' },
    { dst: '100.64.0.4', gateway: '172.31.255.4' },
  ]);
  const lines = await syncContainerRoutes(ctx, 'weft_gw', [
    { ip: '100.64.0.2', via: '172.31.255.2' },
    { ip: '100.64.0.3', via: '172.31.255.3' },
    { ip: '100.64.1.5', via: '172.31.255.5' },
  ]);
  t.deepEqual(commands[0]?.args, ['-4', '-j', 'route', 'show', 'table', 'main', 'proto', String(CONTAINER_ROUTE_PROTO)]);
  t.deepEqual(lines, [
    `route del 100.64.0.3/32 proto ${CONTAINER_ROUTE_PROTO}`,
    `route del 100.64.0.4/32 proto ${CONTAINER_ROUTE_PROTO}`,
    `route replace 100.64.0.3/32 via 172.31.255.3 dev weft_gw proto ${CONTAINER_ROUTE_PROTO}`,
    `route replace 100.64.1.5/32 via 172.31.255.5 dev weft_gw proto ${CONTAINER_ROUTE_PROTO}`,
  ]);
  t.is(commands[1]?.input, lines.join('\n') + '\n', 'in one batch');
});

test('nothing to change runs only the listing; a bad address is refused before any command', async (t) => {
  const { ctx, commands } = fakeContext([{ dst: '100.64.0.2', gateway: '172.31.255.2' }]);
  t.deepEqual(await syncContainerRoutes(ctx, 'weft_gw', [{ ip: '100.64.0.2', via: '172.31.255.2' }]), []);
  t.is(commands.length, 1);
  const bad = fakeContext([]);
  await t.throwsAsync(syncContainerRoutes(bad.ctx, 'weft_gw', [{ ip: '100.64.0.2; reboot', via: '172.31.255.2' }]));
  t.is(bad.commands.length, 0);
});
