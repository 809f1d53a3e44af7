// Small filesystem helpers for secrets: every file the agent writes into its
// data dir is 0600 and replaced atomically and durably (write a temp file,
// fsync it, rename it over, fsync the directory), so neither a crash nor a
// power loss leaves a truncated key or state file behind: without the fsyncs
// the rename can reach the disk before the data, leaving an empty file.
import { chmodSync, closeSync, fchmodSync, fsyncSync, mkdirSync, openSync, renameSync, writeFileSync, readFileSync, existsSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';

export function ensurePrivateDir(path: string): void {
  mkdirSync(path, { recursive: true, mode: 0o700 });
  chmodSync(path, 0o700);
}

export function writeSecretFile(path: string, data: Uint8Array | string): void {
  ensurePrivateDir(dirname(path));
  const temp = `${path}.tmp-${process.pid}`;
  const fd = openSync(temp, 'w', 0o600);
  try {
    fchmodSync(fd, 0o600); // the mode argument is filtered by umask; chmod is not
    writeFileSync(fd, data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(temp, path);
  fsyncDir(dirname(path));
}

/** Makes a rename (or unlink) in the directory durable. */
export function fsyncDir(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export function readOptional(path: string): Buffer | undefined {
  return existsSync(path) ? readFileSync(path) : undefined;
}

export function removeIfPresent(path: string): void {
  rmSync(path, { force: true, recursive: true });
}
