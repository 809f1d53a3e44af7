// The production install, end to end: scripts/release.sh builds the tarball
// (once for this file: ~26 s and ~57 MB on this 2-CPU machine, the CI cost
// of this check), the extracted copy runs, deploy/install.sh --root lays it
// out (idempotent, unit checked by systemd-analyze verify, uninstall keeps the
// state dir unless --purge), and an agent started from the INSTALLED copy
// with the unit's own ExecStart, config file and capability set (setpriv
// drops everything but the unit's CapabilityBoundingSet, and sets
// no_new_privs) joins a lab cluster.
import test from 'ava';
import { execa, type ResultPromise } from 'execa';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { labDown, labUp } from '../../deploy/lab/lab.ts';
import { addUnderlayHost } from '../../dataplane/testing/underlay.ts';
import { eventually, httpGetIn, uniquePrefix, weftOn } from '../helpers/weft-cli.ts';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const VERSION = (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string }).version;
const ARCH = process.arch === 'arm64' ? 'arm64' : 'x64';
const base = mkdtempSync(join(tmpdir(), 'weft-prod-'));
const tarball = join(base, 'dist', `weft-${VERSION}-linux-${ARCH}.tar.gz`);
const prefix = uniquePrefix('pi');
let agent: ResultPromise | undefined;

const install = (args: string[]) => execa('bash', [join(REPO, 'deploy/install.sh'), ...args], { reject: false });

test.before(async () => {
  const r = await execa('bash', [join(REPO, 'scripts/release.sh'), '--out', join(base, 'dist')], { reject: false });
  if (r.exitCode !== 0) throw new Error(`release.sh failed: ${r.stderr}`);
});

test.after.always(async () => {
  agent?.kill('SIGTERM');
  await agent?.catch(() => undefined);
  await labDown(prefix);
  rmSync(base, { recursive: true, force: true });
});

test.serial('the release tarball runs weft --version from an extracted copy, with only its own Node', async (t) => {
  const dir = join(base, 'extracted');
  mkdirSync(dir);
  await execa('tar', ['-C', dir, '-xzf', tarball]);
  const root = join(dir, `weft-${VERSION}-linux-${ARCH}`);
  t.true(existsSync(join(root, `node_modules/node-linux-${ARCH}/bin/node`)));
  t.false(existsSync(join(root, 'node_modules/typescript')), 'no dev dependencies');
  t.false(existsSync(join(root, 'test')), 'no tests');
  const r = await execa(join(root, 'bin/weft'), ['--version'], { env: { PATH: '/usr/bin:/bin' }, extendEnv: false, reject: false });
  t.is(r.exitCode, 0, r.stderr);
  t.is(r.stdout, VERSION);
  t.regex(readFileSync(`${tarball}.sha256`, 'utf8'), new RegExp(`^[0-9a-f]{64}  weft-${VERSION}-linux-${ARCH}\\.tar\\.gz\\n$`));
});

test.serial('install.sh --root installs, is idempotent, and the unit passes systemd-analyze verify', async (t) => {
  const root = join(base, 'root1');
  mkdirSync(root);
  const first = await install(['--from', tarball, '--root', root, '--advertise-addr', '198.18.0.9']);
  t.is(first.exitCode, 0, first.stderr);
  t.regex(first.stdout, /nothing started/);
  t.is(readlinkSync(join(root, 'usr/local/bin/weft')), '/opt/weft/bin/weft');
  t.is(JSON.parse(readFileSync(join(root, 'etc/weft/config.json'), 'utf8')).advertiseAddr, '198.18.0.9');
  writeFileSync(join(root, 'etc/weft/config.json'), '{"logLevel": "warn"}\n'); // the operator's edit
  const again = await install(['--from', tarball, '--root', root]);
  t.is(again.exitCode, 0, again.stderr);
  t.is(readFileSync(join(root, 'etc/weft/config.json'), 'utf8'), '{"logLevel": "warn"}\n', 'a second install keeps the config');
  t.false(existsSync(join(root, 'opt/weft.new')) || existsSync(join(root, 'opt/weft.old')));
  const unit = readFileSync(join(root, 'etc/systemd/system/weft.service'), 'utf8');
  t.regex(unit, /^ExecStart=\/opt\/weft\/bin\/weft agent --config \/etc\/weft\/config\.json$/m);
  t.regex(unit, /^Restart=always$/m);
  t.regex(unit, /^RestartSec=500ms$/m);
  t.regex(unit, /^After=network-online\.target$/m);
  t.notRegex(unit, /^(ProtectSystem|PrivateTmp|PrivateMounts|ProtectHome)=/m, 'no private mount namespace: /run/netns must be shared');
  // verify checks ExecStart's binary exists: point it at the copy in the temp root.
  const copy = join(base, 'weft.service');
  writeFileSync(copy, unit.replaceAll('/opt/weft/', `${root}/opt/weft/`));
  const verify = await execa('systemd-analyze', ['verify', copy], { reject: false });
  t.is(verify.exitCode, 0, verify.stderr);
  t.is(verify.stderr, '', 'no unknown or invalid settings');

  mkdirSync(join(root, 'var/lib/weft'), { recursive: true });
  const removed = await install(['--uninstall', '--root', root]);
  t.is(removed.exitCode, 0, removed.stderr);
  t.false(existsSync(join(root, 'opt/weft')));
  t.false(existsSync(join(root, 'usr/local/bin/weft')));
  t.false(existsSync(join(root, 'etc/systemd/system/weft.service')));
  t.true(existsSync(join(root, 'var/lib/weft')) && existsSync(join(root, 'etc/weft/config.json')), 'state and config kept');
  t.is((await install(['--uninstall', '--root', root])).exitCode, 0, 'uninstall twice is fine');
  t.is((await install(['--uninstall', '--purge', '--root', root])).exitCode, 0);
  t.false(existsSync(join(root, 'var/lib/weft')) || existsSync(join(root, 'etc/weft')));
});

test.serial('install.sh refuses bad arguments and a prefix it did not install', async (t) => {
  const root = join(base, 'root2');
  mkdirSync(join(root, 'opt/other'), { recursive: true });
  const cases: Array<[string[], RegExp]> = [
    [['--prefix', 'opt/weft'], /--prefix must be an absolute path/],
    [['--prefix', '/opt/../etc'], /--prefix must be an absolute path/],
    [['--prefix', '/usr'], /would take over a system directory/],
    [['--root', join(base, 'missing')], /is not a directory/],
    [['--from', join(base, 'nope.tar.gz')], /--from must be a release tarball/],
    [['--advertise-addr', 'host1'], /must be an IPv4 address/],
    [['--purge'], /--purge goes with --uninstall/],
    [['--bogus'], /unknown argument '--bogus'/],
    [['--from', tarball, '--root', root, '--prefix', '/opt/other'], /exists and was not installed by this script/],
  ];
  for (const [args, message] of cases) {
    const r = await install(args);
    t.is(r.exitCode, 2, args.join(' '));
    t.regex(r.stderr, message, args.join(' '));
  }
});

test.serial('an agent started from the installed copy with the unit\'s command and capabilities joins a lab', async (t) => {
  const root = join(base, 'root3');
  mkdirSync(root);
  const r = await install(['--from', tarball, '--root', root]);
  t.is(r.exitCode, 0, r.stderr);
  const lab = await labUp({ hosts: 1, prefix });
  const netns = await addUnderlayHost(prefix, 'h2', '198.18.0.2', 1500);
  const host = { ...lab.hosts[0]!, name: 'h2', netns, ip: '198.18.0.2', socket: join(base, 'h2.sock') };
  // The operator's config edit (README "Production install"), with paths of
  // this test instead of /var/lib/weft and /run/weft, and lab namespace names.
  writeFileSync(join(root, 'etc/weft/config.json'), JSON.stringify({
    advertiseAddr: host.ip, listenAddr: `${host.ip}:2377`, name: 'h2', dataDir: join(base, 'h2-data'), apiSocket: host.socket,
    nsPrefix: netns, egressSubnet: '198.19.255.0/24', logLevel: 'info', metricsAddr: `${host.ip}:9470`,
  }));
  const unit = readFileSync(join(root, 'etc/systemd/system/weft.service'), 'utf8');
  const exec = /^ExecStart=(.+)$/m.exec(unit)![1]!.split(' ').map((word) => (word.startsWith('/opt/') || word.startsWith('/etc/') ? root + word : word));
  const caps = /^CapabilityBoundingSet=(.+)$/m.exec(unit)![1]!.split(' ').map((c) => `+${c.replace(/^CAP_/, '').toLowerCase()}`);
  t.deepEqual(caps, ['+net_admin', '+sys_admin']);
  agent = execa('nsenter', [`--net=/run/netns/${netns}`, 'setpriv', '--no-new-privs', '--inh-caps=-all', `--bounding-set=-all,${caps.join(',')}`, '--', ...exec],
    { reject: false, all: true, env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' }, extendEnv: false });
  const join2 = await eventually('the installed agent to take a join', async () => {
    const joined = await weftOn(host, ['join', '--token', lab.token, `${lab.hosts[0]!.ip}:2377`]);
    return joined.exitCode === 0 ? joined : undefined;
  }, 90_000).catch(async (error: Error) => {
    agent?.kill('SIGTERM');
    throw new Error(`${error.message}\n${(await agent)?.all ?? ''}`);
  });
  t.is(join2.exitCode, 0);
  for (const h of [lab.hosts[0]!, host]) {
    await eventually(`${h.name} to see both members alive`, async () => {
      const ls = await weftOn(h, ['node', 'ls', '--format', 'json']);
      const members = JSON.parse(ls.stdout) as Array<{ name: string; state: string }>;
      return members.filter((m) => m.state === 'alive').map((m) => m.name).sort().join(',') === 'h1,h2';
    }, 90_000);
  }
  // Monitoring as the README's production section sets it up: metricsAddr in the config.
  await eventually('the installed agent to be ready', async () => (await httpGetIn(netns, `http://${host.ip}:9470/readyz`)).status === 200, 60_000);
  const metrics = await httpGetIn(netns, `http://${host.ip}:9470/metrics`);
  const check = await execa('promtool', ['check', 'metrics'], { input: metrics.body, reject: false });
  t.is(check.exitCode, 0, `${check.stdout}${check.stderr}`);
  t.regex(metrics.body, /^weft_cluster_members\{state="alive"\} 2$/m);
});
