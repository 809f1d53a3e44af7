import test from 'ava';
import fc from 'fast-check';
import { countOps, desiredEntries, diffFdb, diffNeighbours, DesiredStateError } from '../../dataplane/diff.ts';
import type { FdbEntry, NeighbourEntry } from '../../dataplane/diff.ts';
import { applyFdbOps, applyNeighbourOps } from '../../dataplane/entry-model.ts';
import { macFromIp } from '../../dataplane/mac.ts';

// Small pools so that generated desired and actual states overlap a lot.
const ips = Array.from({ length: 12 }, (_, i) => `100.64.0.${i + 2}`);
const vteps = ['198.18.0.1', '198.18.0.2', '198.18.0.3'];
const macs = [...ips.map(macFromIp), '02:00:00:00:00:01', '0a:bb:cc:dd:ee:ff'];

const fdbEntry: fc.Arbitrary<FdbEntry> = fc.record({
  mac: fc.constantFrom(...macs),
  vtep: fc.constantFrom(...vteps),
  permanent: fc.boolean(),
  overrides: fc.boolean(),
});
const neighbourEntry: fc.Arbitrary<NeighbourEntry> = fc.record({
  ip: fc.constantFrom(...ips),
  mac: fc.option(fc.constantFrom(...macs), { nil: undefined }),
  permanent: fc.boolean(),
});
/** The kernel holds at most one entry per unicast MAC / per IP. */
const fdbTable = fc.uniqueArray(fdbEntry, { selector: (e) => e.mac, maxLength: 14 });
const neighbourTable = fc.uniqueArray(neighbourEntry, { selector: (e) => e.ip, maxLength: 12 });
/** Desired endpoints: unique IPs, MAC derived from the IP as the agent does. */
const desired = fc.uniqueArray(fc.record({ ip: fc.constantFrom(...ips), vtep: fc.constantFrom(...vteps) }), { selector: (e) => e.ip, maxLength: 12 })
  .map((list) => list.map((e) => ({ ...e, mac: macFromIp(e.ip) })));

const sortFdb = (entries: readonly FdbEntry[]) => [...entries].sort((a, b) => a.mac.localeCompare(b.mac));
const sortNeigh = (entries: readonly NeighbourEntry[]) => [...entries].sort((a, b) => a.ip.localeCompare(b.ip));

test('property: applying diff(desired, actual) to actual yields exactly desired', (t) => {
  fc.assert(fc.property(desired, fdbTable, neighbourTable, (endpoints, fdb, neighbours) => {
    const want = desiredEntries(endpoints);
    const fdbAfter = applyFdbOps(fdb, diffFdb(want.fdb, fdb));
    const neighAfter = applyNeighbourOps(neighbours, diffNeighbours(want.neighbours, neighbours));
    const fdbWant = sortFdb([...want.fdb].map(([mac, vtep]) => ({ mac, vtep, permanent: true, overrides: false })));
    const neighWant = sortNeigh([...want.neighbours].map(([ip, mac]) => ({ ip, mac, permanent: true })));
    t.deepEqual(sortFdb(fdbAfter), fdbWant);
    t.deepEqual(sortNeigh(neighAfter), neighWant);
  }), { numRuns: 500 });
});

test('property: a second diff after applying the first is empty (reconcile converges in one pass)', (t) => {
  fc.assert(fc.property(desired, fdbTable, neighbourTable, (endpoints, fdb, neighbours) => {
    const want = desiredEntries(endpoints);
    const fdbAfter = applyFdbOps(fdb, diffFdb(want.fdb, fdb));
    const neighAfter = applyNeighbourOps(neighbours, diffNeighbours(want.neighbours, neighbours));
    t.deepEqual(diffFdb(want.fdb, fdbAfter), []);
    t.deepEqual(diffNeighbours(want.neighbours, neighAfter), []);
  }), { numRuns: 300 });
});

test('property: entries that are already right are never touched', (t) => {
  fc.assert(fc.property(desired, fdbTable, (endpoints, fdb) => {
    const want = desiredEntries(endpoints);
    const touched = new Set(diffFdb(want.fdb, fdb).map((o) => o.mac));
    for (const e of fdb) {
      if (e.permanent && !e.overrides && want.fdb.get(e.mac) === e.vtep) t.false(touched.has(e.mac));
    }
  }), { numRuns: 300 });
});

test('diff of a correct state is empty', (t) => {
  const want = desiredEntries([{ ip: '100.64.0.5', mac: macFromIp('100.64.0.5'), vtep: '198.18.0.2' }]);
  t.deepEqual(diffFdb(want.fdb, [{ mac: '02:42:64:40:00:05', vtep: '198.18.0.2', permanent: true, overrides: false }]), []);
  t.deepEqual(diffNeighbours(want.neighbours, [{ ip: '100.64.0.5', mac: '02:42:64:40:00:05', permanent: true }]), []);
});

test('missing entries are added, stale ones removed, wrong ones replaced', (t) => {
  const want = desiredEntries([
    { ip: '100.64.0.5', mac: macFromIp('100.64.0.5'), vtep: '198.18.0.2' },
    { ip: '100.64.0.6', mac: macFromIp('100.64.0.6'), vtep: '198.18.0.3' },
  ]);
  const fdbOps = diffFdb(want.fdb, [
    { mac: '02:42:64:40:00:05', vtep: '198.18.0.9', permanent: true, overrides: false }, // wrong VTEP
    { mac: '02:42:64:40:00:07', vtep: '198.18.0.2', permanent: true, overrides: false }, // stale
  ]);
  t.deepEqual(fdbOps, [
    { op: 'replace', mac: '02:42:64:40:00:05', vtep: '198.18.0.2' },
    { op: 'delete', mac: '02:42:64:40:00:07' },
    { op: 'add', mac: '02:42:64:40:00:06', vtep: '198.18.0.3' },
  ]);
  t.deepEqual(countOps(fdbOps), { added: 1, removed: 1, replaced: 1 });
  const neighOps = diffNeighbours(want.neighbours, [
    { ip: '100.64.0.5', mac: '02:42:64:40:00:05', permanent: false }, // right MAC, not permanent
    { ip: '100.64.0.6', mac: undefined, permanent: false }, // failed entry
    { ip: '100.64.0.9', mac: '02:42:64:40:00:09', permanent: true }, // stale
  ]);
  t.deepEqual(neighOps, [
    { op: 'replace', ip: '100.64.0.5', mac: '02:42:64:40:00:05' },
    { op: 'replace', ip: '100.64.0.6', mac: '02:42:64:40:00:06' },
    { op: 'delete', ip: '100.64.0.9' },
  ]);
});

test('an FDB entry with its own port or VNI is replaced even if its VTEP is right', (t) => {
  const want = desiredEntries([{ ip: '100.64.0.5', mac: macFromIp('100.64.0.5'), vtep: '198.18.0.2' }]);
  t.deepEqual(diffFdb(want.fdb, [{ mac: '02:42:64:40:00:05', vtep: '198.18.0.2', permanent: true, overrides: true }]),
    [{ op: 'replace', mac: '02:42:64:40:00:05', vtep: '198.18.0.2' }]);
});

test('contradictory desired endpoints are refused, duplicates merged', (t) => {
  t.throws(() => desiredEntries([
    { ip: '100.64.0.5', mac: '02:42:64:40:00:05', vtep: '198.18.0.2' },
    { ip: '100.64.0.5', mac: '02:42:64:40:00:06', vtep: '198.18.0.2' },
  ]), { instanceOf: DesiredStateError, message: /IP 100\.64\.0\.5 has both MAC/ });
  t.throws(() => desiredEntries([
    { ip: '100.64.0.5', mac: '02:42:64:40:00:05', vtep: '198.18.0.2' },
    { ip: '100.64.0.6', mac: '02:42:64:40:00:05', vtep: '198.18.0.3' },
  ]), { instanceOf: DesiredStateError, message: /behind both/ });
  t.throws(() => desiredEntries([{ ip: '100.64.0.5', mac: '03:42:64:40:00:05', vtep: '198.18.0.2' }]), { message: /not a unicast/ });
  const merged = desiredEntries([
    { ip: '100.64.0.5', mac: '02:42:64:40:00:05', vtep: '198.18.0.2' },
    { ip: '100.64.0.5', mac: '02:42:64:40:00:05', vtep: '198.18.0.2' },
  ]);
  t.is(merged.fdb.size, 1);
  t.is(merged.neighbours.size, 1);
});

test('MACs are compared case-insensitively', (t) => {
  const want = desiredEntries([{ ip: '100.64.0.5', mac: '02:42:64:40:00:0A', vtep: '198.18.0.2' }]);
  t.deepEqual(diffFdb(want.fdb, [{ mac: '02:42:64:40:00:0a', vtep: '198.18.0.2', permanent: true, overrides: false }]), []);
});
