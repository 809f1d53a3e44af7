// The agent's state files on disk: the tables and their Lamport clock are
// saved together, the clock never loads below the entries it has seen, and a
// file a crash emptied or damaged is refused with the file named, never read
// as an empty state.
import test from 'ava';
import { mkdtempSync, readdirSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataDir } from '../../agent/daemon/data-dir.ts';
import { encodeEntryBatch } from '../../agent/wire/tables-codec.ts';
import type { WireEntry } from '../../controlplane/tables/index.ts';
import type { Snapshot } from '../../agent/wire/cluster-codec.ts';

const OWNER = 'ab'.repeat(16);
const entry = (key: string, lamport: number): WireEntry => ({ table: 'networks', key, owner: OWNER, lamport, deleted: false, reapInMs: 0, value: new Uint8Array([1, 2, 3, 4]), signature: new Uint8Array(64).fill(7) });
const ENTRIES = [entry('a', 3), entry('b', 9)];

function fresh(): { dir: DataDir; cluster: string } {
  const path = mkdtempSync(join(tmpdir(), 'weft-state-'));
  const dir = new DataDir(path);
  dir.saveState({ members: [] } as Snapshot); // creates cluster/
  return { dir, cluster: join(path, 'cluster') };
}

/** The files save() wrote for the tables (whatever their names), for a test to damage. */
function tableFiles(cluster: string): string[] {
  return readdirSync(cluster).filter((n) => n !== 'state.pb').map((n) => join(cluster, n));
}

test('the tables and their clock round-trip, and the clock never loads below the newest entry', (t) => {
  const { dir, cluster } = fresh();
  dir.tableStore().save(42, ENTRIES);
  t.deepEqual(dir.tableStore().load(), { lamport: 42, entries: ENTRIES });
  dir.tableStore().save(5, ENTRIES);
  t.is(dir.tableStore().load()!.lamport, 9, 'a clock behind its own entries is raised to the newest');
  for (const file of tableFiles(cluster)) t.is(statSync(file).mode & 0o777, 0o600);
  t.is(tableFiles(cluster).length, 1, 'one file: the clock and the tables cannot be torn apart');
});

test('a tables file a crash left empty is refused, not read as clock 0', (t) => {
  const { dir, cluster } = fresh();
  dir.tableStore().save(42, ENTRIES);
  for (const file of tableFiles(cluster)) truncateSync(file, 0);
  const error = t.throws(() => dir.tableStore().load());
  t.regex(error!.message, /state file .*cluster\/\S+ is corrupt: it is empty\. The agent will not start on it/);
  t.regex(error!.message, /move it aside/);
});

test('a damaged tables file (a byte of a value flipped, or cut short) is refused', (t) => {
  const { dir, cluster } = fresh();
  dir.tableStore().save(42, ENTRIES);
  const [file] = tableFiles(cluster).filter((f) => readFileSync(f).length > 8);
  const data = readFileSync(file!);
  data[data.length - 1]! ^= 0xff; // the last value byte: still well-formed protobuf
  writeFileSync(file!, data);
  t.throws(() => dir.tableStore().load(), { message: /is corrupt: its checksum does not match/ });
  writeFileSync(file!, data.subarray(0, data.length - 3));
  t.throws(() => dir.tableStore().load(), { message: /is corrupt/ });
});

test('the files of older agents: read strictly, an empty clock refused, replaced on the next save', (t) => {
  const { dir, cluster } = fresh();
  writeFileSync(join(cluster, 'tables.pb'), encodeEntryBatch(ENTRIES));
  writeFileSync(join(cluster, 'lamport'), '');
  t.throws(() => dir.tableStore().load(), { message: /cluster\/lamport is corrupt: it is empty/ });
  writeFileSync(join(cluster, 'lamport'), '77\n');
  t.deepEqual(dir.tableStore().load(), { lamport: 77, entries: ENTRIES });
  dir.tableStore().save(78, ENTRIES);
  t.deepEqual(readdirSync(cluster).filter((n) => n === 'tables.pb' || n === 'lamport'), []);
  t.is(dir.tableStore().load()!.lamport, 78);
});

test('an empty or damaged cluster snapshot is refused, not read as an empty cluster', (t) => {
  const { dir, cluster } = fresh();
  const file = join(cluster, 'state.pb');
  t.deepEqual(dir.loadState()!.members, []);
  truncateSync(file, 0);
  t.throws(() => dir.loadState(), { message: /state file .*state\.pb is corrupt: it is empty/ });
  dir.saveState({ members: [] } as Snapshot);
  const data = readFileSync(file);
  writeFileSync(file, data.subarray(0, data.length - 1));
  t.throws(() => dir.loadState(), { message: /state\.pb is corrupt/ });
});
