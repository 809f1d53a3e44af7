// A sandbox's /etc/netns/NAME/resolv.conf, in a scratch directory: weft
// writes and removes only its own files; a file someone else put there, or a
// symlink, is neither overwritten, written through, nor deleted.
import test from 'ava';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync, lstatSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { removeResolvConf, writeResolvConf } from '../../dataplane/resolv-conf.ts';

const LINES = ['nameserver 172.31.255.1', 'options ndots:0'];

function scratch(): string {
  return mkdtempSync(join(tmpdir(), 'weft-resolv-'));
}

test('weft writes, rewrites in place and removes its own file', (t) => {
  const root = scratch();
  t.is(writeResolvConf('sbx', LINES, root), 'written');
  t.is(writeResolvConf('sbx', LINES, root), 'unchanged');
  const path = join(root, 'sbx', 'resolv.conf');
  const inode = lstatSync(path).ino;
  t.is(writeResolvConf('sbx', ['nameserver 172.31.255.9'], root), 'written');
  t.is(lstatSync(path).ino, inode, 'same inode: a bind mount of it sees the change');
  t.regex(readFileSync(path, 'utf8'), /^# written by weft.*\nnameserver 172\.31\.255\.9\n$/);
  t.true(removeResolvConf('sbx', root));
  t.false(existsSync(join(root, 'sbx')));
});

test('a resolv.conf weft did not write is kept as it is, and never deleted', (t) => {
  const root = scratch();
  mkdirSync(join(root, 'theirs'));
  const path = join(root, 'theirs', 'resolv.conf');
  writeFileSync(path, 'nameserver 192.0.2.53\nsearch example.test\n');
  t.is(writeResolvConf('theirs', LINES, root), 'foreign');
  t.is(readFileSync(path, 'utf8'), 'nameserver 192.0.2.53\nsearch example.test\n');
  t.false(removeResolvConf('theirs', root));
  t.true(existsSync(path));
});

test('a symlink in its place is neither written through nor deleted', (t) => {
  const root = scratch();
  const outside = join(scratch(), 'host-file');
  writeFileSync(outside, 'precious\n');
  mkdirSync(join(root, 'linked'));
  symlinkSync(outside, join(root, 'linked', 'resolv.conf'));
  t.is(writeResolvConf('linked', LINES, root), 'foreign');
  t.is(readFileSync(outside, 'utf8'), 'precious\n', 'the symlink target is untouched');
  // Even a symlink to a file weft wrote elsewhere is not weft's file.
  t.is(writeResolvConf('mine', LINES, root), 'written');
  mkdirSync(join(root, 'alias'));
  symlinkSync(join(root, 'mine', 'resolv.conf'), join(root, 'alias', 'resolv.conf'));
  t.false(removeResolvConf('alias', root));
  t.true(lstatSync(join(root, 'alias', 'resolv.conf')).isSymbolicLink());
});
