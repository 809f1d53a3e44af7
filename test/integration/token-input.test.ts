// `weft join` reads the token from --token, --token-file PATH or --token -
// (standard input), so that it need not appear in `ps`. Without an agent the
// CLI stops at "no agent answering" once the token is accepted: that message
// proves the token was read and parsed.
import test from 'ava';
import { execa } from 'execa';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI_MAIN } from '../helpers/weft-cli.ts';
import { formatToken } from '../../controlplane/security/token.ts';

const NO_AGENT = { WEFT_SOCKET: '/tmp/weft-test-no-agent.sock' };
const GOOD_TOKEN = formatToken({ caDigest: new Uint8Array(32).fill(3), secret: new Uint8Array(32).fill(4) });
const dir = mkdtempSync(join(tmpdir(), 'weft-token-input-'));
const NO_AGENT_ANSWER = /no weft agent is answering/;

test.after.always(() => rmSync(dir, { recursive: true, force: true }));

async function join_(args: string[], input?: string): Promise<{ exitCode: number; stderr: string }> {
  const r = await execa(process.execPath, ['--disable-warning=ExperimentalWarning', CLI_MAIN, 'join', ...args, '198.18.0.1'], {
    reject: false,
    env: NO_AGENT,
    timeout: 60_000,
    ...(input === undefined ? { stdin: 'ignore' as const } : { input }),
  });
  return { exitCode: r.exitCode ?? -1, stderr: String(r.stderr) };
}

test('--token-file PATH reads the token from the file', async (t) => {
  const path = join(dir, 'token');
  writeFileSync(path, GOOD_TOKEN + '\n', { mode: 0o600 });
  const r = await join_(['--token-file', path]);
  t.is(r.exitCode, 1, r.stderr);
  t.regex(r.stderr, NO_AGENT_ANSWER);
});

test('--token - reads the token from standard input', async (t) => {
  const r = await join_(['--token', '-'], GOOD_TOKEN + '\n');
  t.is(r.exitCode, 1, r.stderr);
  t.regex(r.stderr, NO_AGENT_ANSWER);
});

test('a missing token file is bad usage naming the file', async (t) => {
  const r = await join_(['--token-file', join(dir, 'absent')]);
  t.is(r.exitCode, 2, r.stderr);
  t.regex(r.stderr, /--token-file .*absent: cannot read the join token: ENOENT/);
});

test('a directory given as the token file is bad usage', async (t) => {
  const r = await join_(['--token-file', dir]);
  t.is(r.exitCode, 2, r.stderr);
  t.regex(r.stderr, /--token-file .*: cannot read the join token: EISDIR/);
});

test('an empty token file, an empty standard input and a garbled one are bad usage', async (t) => {
  const empty = join(dir, 'empty');
  writeFileSync(empty, '\n\n');
  const fromFile = await join_(['--token-file', empty]);
  t.is(fromFile.exitCode, 2);
  t.regex(fromFile.stderr, /no join token found/);
  const fromStdin = await join_(['--token', '-'], '');
  t.is(fromStdin.exitCode, 2);
  t.regex(fromStdin.stderr, /standard input.*no join token found/);
  const garbled = await join_(['--token', '-'], 'WEFT-1-nonsense\n');
  t.is(garbled.exitCode, 2);
  t.regex(garbled.stderr, /malformed join token/);
});

test('two lines or a huge file are not taken as a token', async (t) => {
  const two = join(dir, 'two');
  writeFileSync(two, `${GOOD_TOKEN}\n${GOOD_TOKEN}\n`);
  const r = await join_(['--token-file', two]);
  t.is(r.exitCode, 2);
  t.regex(r.stderr, /expected one line with the join token, found 2/);
  const huge = join(dir, 'huge');
  writeFileSync(huge, 'A'.repeat(100_000));
  const h = await join_(['--token-file', huge]);
  t.is(h.exitCode, 2);
  t.regex(h.stderr, /too large for a join token file/);
});

test('--token and --token-file together are bad usage', async (t) => {
  const path = join(dir, 'both');
  writeFileSync(path, GOOD_TOKEN);
  const r = await join_(['--token', GOOD_TOKEN, '--token-file', path]);
  t.is(r.exitCode, 2);
  t.regex(r.stderr, /either --token or --token-file, not both/);
});
