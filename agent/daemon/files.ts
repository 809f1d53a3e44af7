// Small filesystem helpers for secrets: every file the agent writes into its
// data dir is 0600 and replaced atomically (write to a temp file, rename), so a
// crash mid-write never leaves a truncated key or state file behind.
import { chmodSync, mkdirSync, renameSync, writeFileSync, readFileSync, existsSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';

export function ensurePrivateDir(path: string): void {
  mkdirSync(path, { recursive: true, mode: 0o700 });
  chmodSync(path, 0o700);
}

export function writeSecretFile(path: string, data: Uint8Array | string): void {
  ensurePrivateDir(dirname(path));
  const temp = `${path}.tmp-${process.pid}`;
  writeFileSync(temp, data, { mode: 0o600 });
  chmodSync(temp, 0o600); // the mode option is filtered by umask; chmod is not
  renameSync(temp, path);
}

export function readOptional(path: string): Buffer | undefined {
  return existsSync(path) ? readFileSync(path) : undefined;
}

export function removeIfPresent(path: string): void {
  rmSync(path, { force: true, recursive: true });
}
