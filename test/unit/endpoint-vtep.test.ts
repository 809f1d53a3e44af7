// An endpoint entry is programmed only when it is its owner's, on its own
// network, and names its owner's roster address as VTEP: a member cannot
// steer another member's (or a made-up) endpoint's traffic to an address of
// its choosing.
import test from 'ava';
import { ReplicatedTables } from '../../controlplane/tables/index.ts';
import { visibleEndpoints } from '../../agent/overlay/endpoints.ts';
import { endpointsTable } from '../../controlplane/node/topics.ts';
import { encodeEndpoint, type EndpointObject } from '../../agent/wire/objects-codec.ts';
import type { TableService } from '../../agent/cluster/table-service.ts';

const SELF = 'a'.repeat(32);
const B = 'b'.repeat(32);
const ROGUE = 'c'.repeat(32);
const NET = '0123456789ab';
const network = { id: NET, subnet: '10.9.0.0/24', gateway: '10.9.0.1' };
const context = (vtepOf: (id: string) => string | undefined) => ({ network, vtepOf, serviceVips: new Set<string>() });
const roster = new Map([[SELF, '198.18.0.1'], [B, '198.18.0.2'], [ROGUE, '198.18.0.3']]);

const endpoint = (id: string, nodeId: string, vtep: string, ip: string): EndpointObject => ({
  id, networkId: NET, name: '', ip, mac: '02:00:00:00:00:01', nodeId, vtep, sandbox: 'ns', aliases: [], services: [], unhealthyServices: [],
});

test('endpoints naming a VTEP other than their owner\'s roster address are not programmed', (t) => {
  const self = new ReplicatedTables({ self: SELF });
  const table = endpointsTable(NET);
  const b = new ReplicatedTables({ self: B });
  const rogue = new ReplicatedTables({ self: ROGUE });
  const entries = [
    b.set(1, table, '000000000001', encodeEndpoint(endpoint('000000000001', B, '198.18.0.2', '10.9.0.2'))).entry,
    rogue.set(1, table, '000000000002', encodeEndpoint(endpoint('000000000002', ROGUE, '203.0.113.9', '10.9.0.3'))).entry,
    rogue.set(1, table, '000000000003', encodeEndpoint(endpoint('000000000003', ROGUE, '198.18.0.2', '10.9.0.4'))).entry,
    rogue.set(1, table, '000000000004', encodeEndpoint(endpoint('000000000004', B, '198.18.0.2', '10.9.0.5'))).entry,
    rogue.set(1, table, '000000000005', encodeEndpoint(endpoint('000000000005', ROGUE, '198.18.0.3', '10.9.0.6'))).entry,
  ];
  for (const entry of entries) self.applySynced(2, entry.owner, [entry]);
  const tables = { tables: self } as unknown as TableService;
  const seen = visibleEndpoints(tables, context((id) => roster.get(id))).map((e) => e.id);
  t.deepEqual(seen.sort(), ['000000000001', '000000000005']);
  // A member the roster does not know has no VTEP at all.
  t.deepEqual(visibleEndpoints(tables, context(() => undefined)), []);
});
