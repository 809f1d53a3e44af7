// HostNetworks.announce against a real node core: the network-hosts entry is
// written once, not again for every sandbox (each rewrite was one more gossip
// message, and made the sandbox's endpoint entry wait for the next coalesced
// flush instead of going out at once).
import test from 'ava';
import pino from 'pino';
import { NodeCore } from '../../controlplane/node/node-core.ts';
import { UNSIGNED_CLAIMS, mulberry32 } from '../../controlplane/membership/index.ts';
import { endpointsTable } from '../../controlplane/node/topics.ts';
import { HostNetworks, NETWORK_HOSTS } from '../../agent/overlay/host-networks.ts';
import type { TableService } from '../../agent/cluster/table-service.ts';
import type { Dataplane } from '../../dataplane/index.ts';

function setup() {
  const core = new NodeCore({ self: { id: 'a', address: 'sim://a' }, now: 0, rng: mulberry32(1), claims: UNSIGNED_CLAIMS });
  const published: string[][] = [];
  const writes: string[] = [];
  let now = 0;
  const step = (input: Parameters<NodeCore['step']>[1]): void => {
    now += 100; // each call after a quiet gap
    published.push(...core.step(now, input).publish.map((p) => p.entries.map((e) => `${e.table}/${e.key}`)));
  };
  // Only what announce() uses, on the same core the agent runs.
  const tables = {
    tables: core.tables,
    networks: () => core.networks(),
    joinNetwork: (network: string) => step({ kind: 'join-network', network }),
    set: (table: string, key: string, value: Uint8Array) => {
      writes.push(`${table}/${key}`);
      step({ kind: 'write', table, key, value });
      return [];
    },
    delete: (table: string, key: string) => {
      writes.push(`-${table}/${key}`);
      step({ kind: 'delete', table, key });
      return [];
    },
    leaveNetwork: (network: string) => step({ kind: 'leave-network', network }),
  } as unknown as TableService;
  const syncs: string[] = [];
  const hosts = new HostNetworks({ dataplane: {} as Dataplane, tables, selfId: 'a', vtep: '198.18.0.1', logger: pino({ level: 'silent' }), syncNetwork: (n) => syncs.push(n) });
  return { core, hosts, tables, writes, published, syncs };
}

test('announce writes network-hosts once; a second sandbox on the network writes nothing more', (t) => {
  const { hosts, tables, writes, published, syncs } = setup();
  hosts.announce('n1');
  hosts.announce('n1');
  t.deepEqual(writes, [`${NETWORK_HOSTS}/n1|a`]);
  t.deepEqual(syncs, ['n1'], 'one sync, when joining');
  // The endpoint written right after the second announce goes out in its own step.
  tables.set(endpointsTable('n1'), 'ep', new Uint8Array([1]));
  t.deepEqual(published.at(-1), [`${endpointsTable('n1')}/ep`]);
});

test('after leaving, announcing again writes the entry again', async (t) => {
  const { core, hosts, writes } = setup();
  hosts.announce('n1');
  await hosts.leave('n1');
  t.is(core.tables.get(NETWORK_HOSTS, 'n1|a'), undefined);
  hosts.announce('n1');
  t.deepEqual(writes, [`${NETWORK_HOSTS}/n1|a`, `-${NETWORK_HOSTS}/n1|a`, `${NETWORK_HOSTS}/n1|a`]);
  t.truthy(core.tables.get(NETWORK_HOSTS, 'n1|a'));
});
