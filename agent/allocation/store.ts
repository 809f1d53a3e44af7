// Each space's ring and the values this node has handed out in it, saved
// after every change of this node's own ranges and before the value is used:
// a restart must never hand a value out twice. One 0600 file per space,
// written to a temp file, fsynced and renamed (with the directory fsynced),
// so a crash or power loss leaves either the old state or the new one.
import { closeSync, existsSync, fsyncSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { ensurePrivateDir } from '../daemon/files.ts';
import { decodeRing, decodeSpaceState, encodeSpaceState, type SpaceState } from '../wire/allocation-codec.ts';

export type { SpaceState } from '../wire/allocation-codec.ts';

export interface AllocationStore {
  /** Names of the spaces with saved state. */
  spaces(): string[];
  /** Undefined when nothing is saved; throws when the saved state is unreadable. */
  load(space: string): SpaceState | undefined;
  save(space: string, state: SpaceState): void;
  remove(space: string): void;
}

const SUFFIX = '.space';
// The first agent-side allocator (agent/cluster/allocation-store.ts) kept two
// files per space; they are read once so an upgraded node keeps its state.
const LEGACY_RING = '.ring';
const LEGACY_ALLOCATED = '.allocated';

export class FileAllocationStore implements AllocationStore {
  readonly #dir: string;

  constructor(dir: string) {
    this.#dir = dir;
    ensurePrivateDir(dir);
  }

  // Space names contain "/" (ip/<network>): encode them into one flat directory.
  #path(space: string, suffix: string): string {
    return join(this.#dir, encodeURIComponent(space) + suffix);
  }

  spaces(): string[] {
    if (!existsSync(this.#dir)) return [];
    const names = new Set<string>();
    for (const file of readdirSync(this.#dir)) {
      for (const suffix of [SUFFIX, LEGACY_RING]) {
        if (file.endsWith(suffix)) names.add(decodeURIComponent(file.slice(0, -suffix.length)));
      }
    }
    return [...names].sort();
  }

  load(space: string): SpaceState | undefined {
    const path = this.#path(space, SUFFIX);
    if (existsSync(path)) {
      const state = decodeSpaceState(new Uint8Array(readFileSync(path)), `saved allocation state ${path}`);
      if (state.ring.space !== space) throw new Error(`${path} holds the ${state.ring.space} space, not ${space}`);
      return state;
    }
    return this.#loadLegacy(space);
  }

  save(space: string, state: SpaceState): void {
    if (state.ring.space !== space) throw new Error(`refusing to save the ${state.ring.space} ring as ${space}`);
    writeDurably(this.#dir, this.#path(space, SUFFIX), encodeSpaceState(state));
    rmSync(this.#path(space, LEGACY_RING), { force: true });
    rmSync(this.#path(space, LEGACY_ALLOCATED), { force: true });
  }

  remove(space: string): void {
    for (const suffix of [SUFFIX, LEGACY_RING, LEGACY_ALLOCATED]) rmSync(this.#path(space, suffix), { force: true });
  }

  #loadLegacy(space: string): SpaceState | undefined {
    const ringPath = this.#path(space, LEGACY_RING);
    const allocatedPath = this.#path(space, LEGACY_ALLOCATED);
    if (!existsSync(ringPath) || !existsSync(allocatedPath)) return undefined;
    const allocated = readFileSync(allocatedPath, 'utf8').split('\n').filter((l) => l !== '').map(Number);
    if (allocated.some((v) => !Number.isSafeInteger(v) || v < 0)) throw new Error(`${allocatedPath} is corrupt: expected one integer per line`);
    return { ring: decodeRing(new Uint8Array(readFileSync(ringPath))), allocated };
  }
}

function writeDurably(dir: string, path: string, data: Uint8Array): void {
  const temp = `${path}.tmp-${process.pid}`;
  const fd = openSync(temp, 'w', 0o600);
  try {
    for (let written = 0; written < data.length; ) written += writeSync(fd, data, written);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  chmodSync(temp, 0o600); // the open mode is filtered by umask; chmod is not
  renameSync(temp, path);
  const dirFd = openSync(dir, 'r');
  try {
    fsyncSync(dirFd);
  } finally {
    closeSync(dirFd);
  }
}
