// Docker-like CLI conventions against a running agent (on loopback, in a
// cluster of one): `node ls -q` and `--format json` give what scripts need,
// `members` and `node ls` agree, and `weft init` prints a join command that
// names this host's real address.
import test from 'ava';
import { execa, type ResultPromise } from 'execa';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI_MAIN, weft, eventually, uniquePrefix } from '../helpers/weft-cli.ts';
import { privateNetns, type PrivateNetns } from '../helpers/private-netns.ts';

const base = mkdtempSync(join(tmpdir(), 'weft-cli-conv-'));
const socket = join(base, 'a.sock');
const port = 20_000 + Math.floor(Math.random() * 20_000);
const env = { WEFT_SOCKET: socket };
let agent: ResultPromise | undefined;
let netns: PrivateNetns | undefined;

test.before(async () => {
  // Its own network namespace: init makes the agent's gateway bridge and nftables tables where it runs.
  netns = await privateNetns('cv');
  agent = execa(...netns.wrap(process.execPath, ['--disable-warning=ExperimentalWarning', CLI_MAIN, '--api-socket', socket, 'agent', '--docker-plugin-dir', '', '--data-dir', join(base, 'data'),
    '--listen-addr', `127.0.0.1:${port}`, '--gossip-port', String(port + 1), '--advertise-addr', '127.0.0.1', '--name', 'conv1', '--ns-prefix', uniquePrefix('cc'), '--log-level', 'warn']), { reject: false });
  await eventually('the agent to answer', async () => (await weft(['status'], env)).exitCode === 0, 60_000);
});

test.after.always(async () => {
  agent?.kill('SIGTERM');
  await agent;
  await netns?.remove();
  rmSync(base, { recursive: true, force: true });
});

test.serial('weft init prints the join command with the advertised address and admission port', async (t) => {
  const init = await weft(['init'], env);
  t.is(init.exitCode, 0, init.stderr);
  t.regex(init.stdout, new RegExp(`^  weft join --token WEFT-1-[A-Z2-7]{52}-[A-Z2-7]{52} 127\\.0\\.0\\.1:${port}$`, 'm'));
  t.notRegex(init.stdout, /this host's address/);
  const token = await weft(['token'], env);
  t.true(init.stdout.includes(`--token ${token.stdout.trim()} `), 'the printed token is the current one');
});

test.serial('node ls -q prints the node ID; --format json, --json and members agree', async (t) => {
  const status = JSON.parse((await weft(['status', '--format', 'json'], env)).stdout) as { nodeId: string };
  const quiet = await weft(['node', 'ls', '-q'], env);
  t.is(quiet.exitCode, 0, quiet.stderr);
  t.is(quiet.stdout, status.nodeId, 'one ID a line (execa strips the final newline)');
  t.is((await weft(['members', '--quiet'], env)).stdout, quiet.stdout);

  const json = await weft(['node', 'ls', '--format', 'json'], env);
  t.is(json.exitCode, 0, json.stderr);
  const members = JSON.parse(json.stdout) as Array<{ nodeId: string; name: string; address: string; state: string; self: boolean }>;
  t.is(members.length, 1);
  t.like(members[0], { nodeId: status.nodeId, name: 'conv1', address: '127.0.0.1', state: 'alive', self: true });
  t.deepEqual(JSON.parse((await weft(['members', '--json'], env)).stdout), members);

  const table = await weft(['node', 'ls'], env);
  t.regex(table.stdout, /^NODE ID\s+NAME\s+ADDRESS/);
  t.regex(table.stdout, new RegExp(`^${status.nodeId.slice(0, 12)} \\*\\s+conv1\\s+127\\.0\\.0\\.1\\s+alive`, 'm'));
});

test.serial('network ls -q prints names that network inspect takes; inspect --format table', async (t) => {
  t.is((await weft(['network', 'create', 'convnet'], env)).exitCode, 0);
  const names = await weft(['network', 'ls', '-q'], env);
  t.is(names.stdout, 'convnet');
  const inspect = await weft(['network', 'inspect', names.stdout.trim()], env);
  t.is(JSON.parse(inspect.stdout).name, 'convnet');
  const table = await weft(['network', 'inspect', 'convnet', '--format', 'table'], env);
  t.regex(table.stdout, /^name\s+convnet$/m);
  t.regex(table.stdout, /^subnet\s+100\.64\.\d+\.0\/24$/m);
  t.deepEqual(JSON.parse((await weft(['service', 'ls', '--format', 'json'], env)).stdout), []);
  t.is((await weft(['endpoints', '-q'], env)).stdout, '');
  t.is((await weft(['network', 'rm', 'convnet'], env)).exitCode, 0);
});

test.serial('a bad --format is refused before the agent is asked (exit 2, flag named)', async (t) => {
  const r = await weft(['node', 'ls', '--format', 'yaml'], { WEFT_SOCKET: join(base, 'nobody.sock') });
  t.is(r.exitCode, 2);
  t.regex(r.stderr, /^weft: --format must be table or json, got "yaml"/);
});
