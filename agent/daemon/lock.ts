// One agent per data dir. A pid file is enough here: the agent runs as root on
// one host, and a stale file (after kill -9) is recognised because its pid is
// no longer alive, so a restart after a crash is never refused.
import { openSync, writeSync, closeSync, readFileSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { ensurePrivateDir } from './files.ts';
import { isProcessAlive } from '../../lib/process-alive.ts';

export class LockError extends Error {
  override name = 'LockError';
}

export interface DataDirLock {
  release(): void;
}

export function lockDataDir(dataDir: string): DataDirLock {
  ensurePrivateDir(dataDir);
  const path = join(dataDir, 'agent.pid');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, 'wx', 0o600);
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      return { release: () => releaseIfOurs(path) };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const holder = Number(readFileSync(path, 'utf8').trim());
      if (Number.isInteger(holder) && holder > 0 && holder !== process.pid && isProcessAlive(holder)) {
        throw new LockError(
          `another weft agent (pid ${holder}) is already using data dir ${dataDir}; stop it first (kill ${holder}) or start this one with a different --data-dir`,
        );
      }
      unlinkSync(path); // stale: its owner is gone
    }
  }
  throw new LockError(`could not lock data dir ${dataDir}; remove ${path} if no agent is running`);
}

function releaseIfOurs(path: string): void {
  try {
    if (Number(readFileSync(path, 'utf8').trim()) === process.pid) unlinkSync(path);
  } catch {
    // already gone: nothing to release
  }
}
