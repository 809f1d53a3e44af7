// Each space's ring and this node's allocated values, persisted after every
// change (0600, atomic): a restart must never hand out a value twice.
import { readdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import type { RingState } from '../../controlplane/allocation/index.ts';
import { readOptional, removeIfPresent, writeSecretFile, ensurePrivateDir } from '../daemon/files.ts';
import { decodeRing, encodeRing } from '../wire/allocation-codec.ts';

export interface SavedSpace {
  ring: RingState;
  allocated: number[];
}

export class AllocationStore {
  readonly #dir: string;

  constructor(dir: string) {
    this.#dir = dir;
    ensurePrivateDir(dir);
  }

  #file(space: string, kind: 'ring' | 'allocated'): string {
    // Space names contain "/" (ip/<network>); keep one flat directory.
    return join(this.#dir, `${encodeURIComponent(space)}.${kind}`);
  }

  load(space: string): SavedSpace | undefined {
    const ring = readOptional(this.#file(space, 'ring'));
    const allocated = readOptional(this.#file(space, 'allocated'));
    if (!ring || !allocated) return undefined;
    const values = allocated.toString('utf8').split('\n').filter((l) => l !== '').map(Number);
    if (values.some((v) => !Number.isSafeInteger(v))) throw new Error(`${this.#file(space, 'allocated')} is corrupt`);
    return { ring: decodeRing(new Uint8Array(ring)), allocated: values };
  }

  save(space: string, state: SavedSpace): void {
    writeSecretFile(this.#file(space, 'ring'), encodeRing(state.ring));
    writeSecretFile(this.#file(space, 'allocated'), state.allocated.join('\n') + '\n');
  }

  remove(space: string): void {
    removeIfPresent(this.#file(space, 'ring'));
    removeIfPresent(this.#file(space, 'allocated'));
  }

  spaces(): string[] {
    if (!existsSync(this.#dir)) return [];
    return readdirSync(this.#dir).filter((f) => f.endsWith('.ring')).map((f) => decodeURIComponent(f.slice(0, -'.ring'.length)));
  }
}
