// A member chooses the IPs of its own endpoints: one outside its network,
// the gateway, a service VIP or another endpoint's IP would have every host
// steer that address's traffic to it. Such an endpoint is left out (and
// reported); the older holder of an IP keeps it; the rest still program.
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
const roster = new Map([[SELF, '198.18.0.1'], [B, '198.18.0.2'], [ROGUE, '198.18.0.3']]);
const network = { id: NET, subnet: '100.64.7.0/24', gateway: '100.64.7.1' };
const vtep = (id: string) => roster.get(id)!;

const endpoint = (id: string, nodeId: string, ip: string): EndpointObject => ({
  id, networkId: NET, name: '', ip, mac: '02:00:00:00:00:01', nodeId, vtep: vtep(nodeId), sandbox: 'ns', aliases: [], services: [], unhealthyServices: [],
});

function tablesWith(writes: Array<{ at: number; owner: ReplicatedTables; endpoint: EndpointObject }>): TableService {
  const self = new ReplicatedTables({ self: SELF });
  for (const { at, owner, endpoint: e } of writes) {
    const { entry } = owner.set(at, endpointsTable(NET), e.id, encodeEndpoint(e));
    self.applySynced(at + 1, entry.owner, [entry]);
  }
  return { tables: self } as unknown as TableService;
}

test('endpoints outside their subnet host range, on the gateway or on a service VIP are not programmed', (t) => {
  const b = new ReplicatedTables({ self: B });
  const rogue = new ReplicatedTables({ self: ROGUE });
  const tables = tablesWith([
    { at: 1, owner: b, endpoint: endpoint('000000000001', B, '100.64.7.2') },
    { at: 1, owner: rogue, endpoint: endpoint('000000000002', ROGUE, '192.0.2.10') },
    { at: 1, owner: rogue, endpoint: endpoint('000000000003', ROGUE, '100.64.7.1') },
    { at: 1, owner: rogue, endpoint: endpoint('000000000004', ROGUE, '100.64.7.0') },
    { at: 1, owner: rogue, endpoint: endpoint('000000000005', ROGUE, '100.64.7.255') },
    { at: 1, owner: rogue, endpoint: endpoint('000000000006', ROGUE, '100.64.7.50') },
    { at: 1, owner: rogue, endpoint: endpoint('000000000007', ROGUE, '100.64.7.7') },
  ]);
  const seen = visibleEndpoints(tables, { network, vtepOf: (id) => roster.get(id), serviceVips: new Set(['100.64.7.50']) }).map((e) => e.id);
  t.deepEqual(seen.sort(), ['000000000001', '000000000007']);
});

test('two endpoints on one IP: the older keeps it, whoever writes later', (t) => {
  const b = new ReplicatedTables({ self: B });
  const rogue = new ReplicatedTables({ self: ROGUE });
  // B's endpoint holds 100.64.7.9 first; the rogue's later copy of the IP, and
  // a second endpoint of B's on it, are left out; the rogue's other endpoint stays.
  const tables = tablesWith([
    { at: 5, owner: b, endpoint: endpoint('000000000001', B, '100.64.7.9') },
    { at: 9, owner: rogue, endpoint: endpoint('000000000002', ROGUE, '100.64.7.9') },
    { at: 10, owner: b, endpoint: endpoint('000000000003', B, '100.64.7.9') },
    { at: 10, owner: rogue, endpoint: endpoint('000000000004', ROGUE, '100.64.7.10') },
  ]);
  const seen = visibleEndpoints(tables, { network, vtepOf: (id) => roster.get(id), serviceVips: new Set() }).map((e) => `${e.id}=${e.ip}`);
  t.deepEqual(seen.sort(), ['000000000001=100.64.7.9', '000000000004=100.64.7.10']);
});

test('the sieve reports each refused endpoint with its owner and why (weft doctor)', async (t) => {
  const { sieveEndpoints } = await import('../../controlplane/overlay/endpoint-sieve.ts');
  const candidates = [
    { endpoint: { id: 'late', ip: '100.64.7.9' }, lamport: 9, owner: ROGUE },
    { endpoint: { id: 'early', ip: '100.64.7.9' }, lamport: 5, owner: B },
    { endpoint: { id: 'tie', ip: '100.64.7.9' }, lamport: 5, owner: ROGUE },
    { endpoint: { id: 'gw', ip: '100.64.7.1' }, lamport: 1, owner: ROGUE },
  ];
  const { endpoints, refused } = sieveEndpoints(candidates, network, new Set());
  t.deepEqual(endpoints.map((e) => e.id), ['early']);
  t.deepEqual(refused.map((r) => [r.id, r.owner]), [['gw', ROGUE], ['tie', ROGUE], ['late', ROGUE]]);
  t.regex(refused[1]!.problem, /belongs to the older endpoint early of b{32}/);
  t.regex(refused[0]!.problem, /not a host address/);
});
