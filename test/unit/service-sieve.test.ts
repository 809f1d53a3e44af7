// A remote service that no host can program (bad name, VIP outside its
// network, VIP:port of another service) is left out on its own: every other
// service of the same sandboxes still gets its load balancer.
import test from 'ava';
import fc from 'fast-check';
import { ReplicatedTables } from '../../controlplane/tables/index.ts';
import { Services, SERVICES_TABLE } from '../../agent/overlay/services.ts';
import { Networks } from '../../agent/overlay/networks.ts';
import { lbServices } from '../../agent/services/views.ts';
import { renderLb } from '../../dataplane/lb/ruleset.ts';
import { encodeNetwork, encodeService, type ServiceObject } from '../../agent/wire/objects-codec.ts';
import { sieveServices } from '../../controlplane/services/service-sieve.ts';
import type { TableService } from '../../agent/cluster/table-service.ts';
import type { Allocations } from '../../agent/overlay/spaces.ts';

const SELF = 'a'.repeat(32);
const ROGUE = 'c'.repeat(32);
const NET = '0123456789ab';
const network = { id: NET, name: 'app', vni: 4097, subnet: '10.9.0.0/24', gateway: '10.9.0.1', internal: false, createdBy: SELF, poolSubnet: false };

const service = (name: string, vip: string, port = 80, id = 'cccccccccccc'): ServiceObject => ({
  id, name, networkId: NET, mode: 'vip', vip, ports: [{ port, protocol: 'tcp' }], health: { kind: '', port: 0, path: '' }, createdBy: SELF, publish: [],
});

function overlayOf(tables: ReplicatedTables): { services: Services; networks: Networks } {
  const service = { tables } as unknown as TableService;
  const allocations = {} as Allocations;
  const networks = new Networks(service, allocations, '100.64.0.0/10', SELF);
  return { networks, services: new Services(service, allocations, SELF, () => networks.list(), async () => undefined) };
}

test('a bad or clashing remote service is left out and reported; the others still render', (t) => {
  const self = new ReplicatedTables({ self: SELF });
  self.set(1, 'networks', 'app', encodeNetwork(network));
  self.set(1, SERVICES_TABLE, 'web', encodeService(service('web', '10.9.0.5')));
  const rogue = new ReplicatedTables({ self: ROGUE, initialLamport: 10 });
  const writes = [
    rogue.set(1, SERVICES_TABLE, 'we.b', encodeService(service('we.b', '10.9.0.6'))),
    rogue.set(1, SERVICES_TABLE, 'steal', encodeService(service('steal', '10.9.0.5'))),
    rogue.set(1, SERVICES_TABLE, 'dns', encodeService(service('dns', '192.0.2.53', 53))),
    rogue.set(1, SERVICES_TABLE, 'tasks', encodeService(service('tasks', '10.9.0.7'))),
    rogue.set(1, SERVICES_TABLE, 'api', encodeService(service('api', '10.9.0.8'))),
  ];
  self.applyRemoteBatch(2, ROGUE, writes.map((w) => w.entry));
  const { services, networks } = overlayOf(self);
  t.deepEqual(services.list().map((s) => s.name), ['api', 'web']);
  t.deepEqual(services.refused().map((r) => r.name).sort(), ['dns', 'steal', 'tasks', 'we.b']);
  t.regex(services.refused().find((r) => r.name === 'steal')!.problem, /10\.9\.0\.5:80\/tcp belongs to the older service "web"/);
  const specs = lbServices({ networks: networks.list(), services: services.list(), endpoints: () => [] }, [NET]);
  const rendered = renderLb(specs);
  t.deepEqual([...rendered.chains.keys()].sort(), ['svc_api', 'svc_web']);
});

test('the sieve: the oldest holder of a VIP:port keeps it, whatever the order of arrival', (t) => {
  const ranges = new Map([[NET, { subnet: network.subnet, gateway: network.gateway }]]);
  fc.assert(
    fc.property(fc.array(fc.record({ vip: fc.integer({ min: 2, max: 4 }), port: fc.integer({ min: 1, max: 3 }), lamport: fc.nat(5) }), { maxLength: 8 }), (items) => {
      const candidates = items.map((item, i) => ({ service: service(`s${i}`, `10.9.0.${item.vip}`, item.port), lamport: item.lamport, owner: SELF }));
      const forward = sieveServices(candidates, ranges).services.map((s) => s.name).sort();
      const backward = sieveServices([...candidates].reverse(), ranges).services.map((s) => s.name).sort();
      const keys = sieveServices(candidates, ranges).services.map((s) => `${s.vip}:${s.ports[0]!.port}`);
      return JSON.stringify(forward) === JSON.stringify(backward) && new Set(keys).size === keys.length;
    }),
  );
  t.pass();
});

test('an undecodable service or one filed under another name is refused with why; an undecodable network is skipped', (t) => {
  const self = new ReplicatedTables({ self: SELF });
  self.set(1, 'networks', 'app', encodeNetwork(network));
  self.set(1, 'networks', 'junk', new Uint8Array([0xff, 0xff, 0xff]));
  self.set(1, SERVICES_TABLE, 'web', encodeService(service('web', '10.9.0.5')));
  self.set(1, SERVICES_TABLE, 'alias', encodeService(service('db', '10.9.0.6', 80, 'dddddddddddd')));
  self.set(1, SERVICES_TABLE, 'garbage', new Uint8Array([0xff, 0xff, 0xff]));
  const { services, networks } = overlayOf(self);
  t.deepEqual(networks.list().map((n) => n.name), ['app']);
  t.deepEqual(services.list().map((s) => s.name), ['web']);
  const refused = new Map(services.refused().map((r) => [r.name, r.problem]));
  t.deepEqual([...refused.keys()].sort(), ['alias', 'garbage']);
  t.is(refused.get('alias'), 'its entry carries the service "db"');
  t.true((refused.get('garbage') ?? '') !== '', 'a malformed entry says what is wrong with it');
});
