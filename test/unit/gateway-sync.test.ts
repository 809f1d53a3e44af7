// The gateway's sync writes the bridge's table, then the container routes and
// the publish table, each only when it changed. A bridge the sync had to make
// (or bring up) again lost the routes through it and its route_localnet, so
// then the other two are written whatever their last write was.
import test from 'ava';
import pino from 'pino';
import { Gateway } from '../../agent/overlay/gateway.ts';
import type { EgressPlane } from '../../dataplane/index.ts';
import type { Networks } from '../../agent/overlay/networks.ts';

function gatewayWith(bridgeChanges: string[]) {
  const forced: { routes: boolean[]; publish: boolean[] } = { routes: [], publish: [] };
  const egress = {
    spec: { subnet: '198.19.255.0/24', blocked: [] },
    ensure: async () => bridgeChanges,
    syncContainerRoutes: async (_routes: unknown, force?: boolean) => {
      forced.routes.push(force ?? false);
      return [];
    },
  } as unknown as EgressPlane;
  const gateway = new Gateway({
    egress,
    dataplane: { sandbox: () => { throw new Error('unused'); }, writeResolvConf: () => 'written' },
    networks: {} as Networks,
    sandboxes: () => [],
    mtuOf: () => undefined,
    publisher: { sync: async (force?: boolean) => { forced.publish.push(force ?? false); } },
    logger: pino({ level: 'silent' }),
  });
  return { gateway, forced };
}

test('routes and the publish table follow their own last write while the bridge stands', async (t) => {
  const { gateway, forced } = gatewayWith([]);
  await gateway.sync();
  await gateway.sync(true);
  t.deepEqual(forced, { routes: [false, true], publish: [false, true] });
});

test('a bridge made again has its routes and publish settings written again', async (t) => {
  const { gateway, forced } = gatewayWith(['link add weft_gw type bridge', 'link set dev weft_gw up']);
  await gateway.sync();
  t.deepEqual(forced, { routes: [true], publish: [true] });
});
