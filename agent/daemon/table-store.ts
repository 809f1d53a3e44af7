// The replicated tables and the Lamport clock on disk, as one file: the clock
// (8 bytes, big-endian) and the entries (an EntryBatch) in one sealed
// envelope (sealed-file.ts), replaced atomically and fsynced. Written
// together, they can never disagree after a crash; the clock that is loaded
// is also never below the newest entry in the file, so it cannot go back even
// if an older agent's separate clock file was behind.
// Agents before this format wrote cluster/tables.pb and cluster/lamport; they
// are read (strictly: an empty or unreadable clock is refused) and removed
// after the first save in the new format.
import { join } from 'node:path';
import { decodeEntryBatch, encodeEntryBatch } from '../wire/tables-codec.ts';
import type { WireEntry } from '../../controlplane/tables/index.ts';
import type { TableStore } from '../cluster/table-service.ts';
import { readOptional, removeIfPresent, writeSecretFile, fsyncDir } from './files.ts';
import { corrupt, seal, unseal } from './sealed-file.ts';

const CLOCK_BYTES = 8;
const REMEDY = 'move it aside to start with empty tables (the other members send the cluster\'s entries back, and this host re-publishes its own)';

export function fileTableStore(clusterDir: string): TableStore {
  const file = join(clusterDir, 'tables.state');
  const legacyEntries = join(clusterDir, 'tables.pb');
  const legacyClock = join(clusterDir, 'lamport');
  return {
    load: () => {
      const data = readOptional(file);
      const loaded = data !== undefined ? decodeState(data, file) : loadLegacy(legacyEntries, legacyClock);
      return loaded && { lamport: loaded.entries.reduce((max, e) => Math.max(max, e.lamport), loaded.lamport), entries: loaded.entries };
    },
    save: (lamport: number, entries: WireEntry[]) => {
      writeSecretFile(file, encodeState(lamport, entries));
      if (readOptional(legacyEntries) !== undefined || readOptional(legacyClock) !== undefined) {
        removeIfPresent(legacyEntries);
        removeIfPresent(legacyClock);
        fsyncDir(clusterDir);
      }
    },
  };
}

interface Stored {
  lamport: number;
  entries: WireEntry[];
}

function encodeState(lamport: number, entries: WireEntry[]): Uint8Array {
  if (!Number.isSafeInteger(lamport) || lamport < 0) throw new RangeError(`lamport time ${lamport} cannot be saved`);
  const clock = Buffer.alloc(CLOCK_BYTES);
  clock.writeBigUInt64BE(BigInt(lamport));
  return seal(Buffer.concat([clock, encodeEntryBatch(entries)]));
}

function decodeState(data: Uint8Array, path: string): Stored {
  const payload = Buffer.from(unseal(data, path, REMEDY));
  if (payload.length < CLOCK_BYTES) throw corrupt(path, 'it has no Lamport clock', REMEDY);
  const lamport = payload.readBigUInt64BE(0);
  if (lamport > BigInt(Number.MAX_SAFE_INTEGER)) throw corrupt(path, `its Lamport clock ${lamport} is out of range`, REMEDY);
  return { lamport: Number(lamport), entries: decodeEntries(payload.subarray(CLOCK_BYTES), path) };
}

function loadLegacy(entriesPath: string, clockPath: string): Stored | undefined {
  const entries = readOptional(entriesPath);
  const clock = readOptional(clockPath);
  if (entries === undefined && clock === undefined) return undefined;
  if (clock === undefined) throw corrupt(clockPath, `it is missing while ${entriesPath} exists`, REMEDY);
  if (entries === undefined) throw corrupt(entriesPath, `it is missing while ${clockPath} exists`, REMEDY);
  const text = clock.toString('utf8');
  if (!/^\d{1,16}\n?$/.test(text) || !Number.isSafeInteger(Number(text.trim()))) {
    throw corrupt(clockPath, text.length === 0 ? 'it is empty' : 'it does not hold a Lamport time', REMEDY);
  }
  return { lamport: Number(text.trim()), entries: decodeEntries(entries, entriesPath) };
}

function decodeEntries(data: Uint8Array, path: string): WireEntry[] {
  try {
    // An entry that no longer passes the schema is left out; the others load.
    return decodeEntryBatch(new Uint8Array(data)).entries;
  } catch (error) {
    throw corrupt(path, (error as Error).message, REMEDY);
  }
}
