// Adopting a namespace checks its type from the file system (no command):
// an open /proc/PID/ns/X names itself, a bind mount of one shows it in
// mountinfo, and anything else has no type.
import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { namespaceKind } from '../../dataplane/netns-guard.ts';

test('a /proc namespace file names its own type', (t) => {
  t.is(namespaceKind('/proc/self/ns/net'), 'net');
  t.is(namespaceKind('/proc/self/ns/mnt'), 'mnt');
  t.is(namespaceKind('/proc/self/ns/uts'), 'uts');
});

test('a plain file, a directory and a missing path have no namespace type', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'weft-nskind-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'file'), '');
  t.is(namespaceKind(join(dir, 'file')), undefined);
  t.is(namespaceKind(dir), undefined);
  t.is(namespaceKind(join(dir, 'missing')), undefined);
});

test('a FIFO has no namespace type, and looking does not wait for a writer', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'weft-nskind-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  execFileSync('mkfifo', [join(dir, 'fifo')]);
  // A blocking open would stall this process here for good (the test would time out).
  t.is(namespaceKind(join(dir, 'fifo')), undefined);
});
