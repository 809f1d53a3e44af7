// The allocation store (0600 files, checked on load, legacy files migrated)
// and the service's use of it on one node with no network: a restart keeps
// every value, and a space whose saved state is unreadable is never
// initialised afresh (that would fork the ring).
import test from 'ava';
import { pino } from 'pino';
import { mkdtempSync, readdirSync, statSync, writeFileSync, readFileSync, existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { initialRing } from '../../controlplane/allocation/index.ts';
import { ReplicatedTables as Tables } from '../../controlplane/tables/index.ts';
import { FileAllocationStore } from '../../agent/allocation/store.ts';
import { AllocationError, AllocationService, type AllocationCluster } from '../../agent/allocation/allocation-service.ts';
import type { AllocRpcNode } from '../../agent/allocation/alloc-rpc.ts';
import { encodeRing } from '../../agent/wire/allocation-codec.ts';

const logger = pino({ level: 'silent' });
const self = randomBytes(16).toString('hex');

const dirs: string[] = [];

function tmp(): string {
  const dir = mkdtempSync(join(tmpdir(), 'weft-alloc-store-'));
  dirs.push(dir);
  return dir;
}

test.after.always(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** One node alone: tables in memory, no peers, no network. */
function loneCluster(tables = new Tables({ self })): AllocationCluster {
  const libp2p = {
    handle: async () => undefined,
    unhandle: async () => undefined,
    dialProtocol: async () => {
      throw new Error('no network in this test');
    },
  } as unknown as AllocRpcNode;
  return {
    nodeId: self,
    libp2p,
    tables: {
      tables,
      set: (table, key, value) => tables.set(Date.now(), table, key, value).changes,
      delete: (table, key) => tables.delete(Date.now(), table, key)?.changes ?? [],
      subscribe: (listener, filter) => tables.subscribe(listener, filter),
    },
    reachable: () => [self],
    addressOf: () => undefined,
    nodeIdOfPeer: () => undefined,
    roster: { all: () => [{ nodeId: self, status: 'active' as const }] },
  };
}

test('the store round-trips a space in one 0600 file inside a 0700 directory', (t) => {
  const dir = join(tmp(), 'alloc');
  const store = new FileAllocationStore(dir);
  const ring = initialRing('ip/net-1', 10, 20, self);
  store.save('ip/net-1', { ring, allocated: [15, 10, 11, 12] });
  t.deepEqual(store.spaces(), ['ip/net-1']);
  t.deepEqual(store.load('ip/net-1'), { ring, allocated: [10, 11, 12, 15] });
  t.is(store.load('vni'), undefined);
  t.is(statSync(dir).mode & 0o777, 0o700);
  const files = readdirSync(dir);
  t.deepEqual(files, ['ip%2Fnet-1.space']);
  t.is(statSync(join(dir, files[0]!)).mode & 0o777, 0o600);
  store.remove('ip/net-1');
  t.deepEqual(store.spaces(), []);
});

test('a corrupt or misplaced state file is refused with its path, never half-read', (t) => {
  const dir = tmp();
  const store = new FileAllocationStore(dir);
  store.save('vni', { ring: initialRing('vni', 1, 100, self), allocated: [1, 2] });
  const good = readFileSync(join(dir, 'vni.space'));
  writeFileSync(join(dir, 'vni.space'), good.subarray(0, good.length - 3));
  t.throws(() => store.load('vni'), { message: /vni\.space/ });
  writeFileSync(join(dir, 'subnet.space'), good);
  t.throws(() => store.load('subnet'), { message: /holds the vni space, not subnet/ });
  t.throws(() => store.save('subnet', { ring: initialRing('vni', 1, 100, self), allocated: [] }), { message: /refusing/ });
});

test('state written by the first agent-side store (ring + allocated files) is read and then replaced', (t) => {
  const dir = tmp();
  const ring = initialRing('vni', 1, 100, self);
  writeFileSync(join(dir, 'vni.ring'), encodeRing(ring));
  writeFileSync(join(dir, 'vni.allocated'), '1\n2\n7\n');
  const store = new FileAllocationStore(dir);
  t.deepEqual(store.spaces(), ['vni']);
  t.deepEqual(store.load('vni'), { ring, allocated: [1, 2, 7] });
  store.save('vni', { ring, allocated: [1, 2, 7, 8] });
  t.deepEqual(readdirSync(dir).sort(), ['vni.space']);
  t.deepEqual(store.load('vni')?.allocated, [1, 2, 7, 8]);
});

test('a lone node allocates, restarts from its store without handing a value out twice, and frees exactly', async (t) => {
  const dir = tmp();
  const tables = new Tables({ self });
  const first = await AllocationService.start({ cluster: loneCluster(tables), store: new FileAllocationStore(dir), logger });
  first.define({ name: 'vni', start: 1, end: 11 }, true);
  const before = [await first.allocate('vni'), await first.allocate('vni'), await first.allocateValue('vni', 9)];
  first.stop();

  const second = await AllocationService.start({ cluster: loneCluster(tables), store: new FileAllocationStore(dir), logger });
  second.define({ name: 'vni', start: 1, end: 11 }, true); // `weft init` again on the same node: restored, not re-created
  t.like(second.stats('vni'), { owned: 10, allocated: 3, free: 7 });
  const after = await Promise.all(Array.from({ length: 7 }, () => second.allocate('vni')));
  t.is(new Set([...before, ...after]).size, 10, 'all ten values, each once');
  const full = await t.throwsAsync(second.allocate('vni'), { instanceOf: AllocationError });
  t.is(full?.code, 'exhausted');
  for (const v of [...before, ...after]) await second.free('vni', v);
  t.like(second.stats('vni'), { owned: 10, allocated: 0, free: 10 });
  const twice = await t.throwsAsync(second.free('vni', before[0]!), { instanceOf: AllocationError });
  t.is(twice?.code, 'not-allocated');
  const mismatch = t.throws(() => second.define({ name: 'vni', start: 1, end: 20 }, false), { instanceOf: AllocationError });
  t.is(mismatch?.code, 'space-mismatch');
  second.stop();
});

test('a space whose saved state is unreadable is reported and joined, never initialised afresh', async (t) => {
  const dir = tmp();
  writeFileSync(join(dir, 'subnet.space'), 'not protobuf at all');
  const service = await AllocationService.start({ cluster: loneCluster(), store: new FileAllocationStore(dir), logger });
  const [problem] = service.conflicts();
  t.like(problem, { space: 'subnet', via: 'restore' });
  t.regex(problem?.explanations[0] ?? '', /could not restore the saved subnet allocation state/);
  service.define({ name: 'subnet', start: 0, end: 16 }, true);
  t.like(service.stats('subnet'), { owned: 0 });
  service.drop('subnet');
  t.false(existsSync(join(dir, 'subnet.space')));
  t.is(service.stats('subnet'), undefined);
  service.stop();
});
