// The CLI contract without a cluster: bad usage exits 2 with a message that
// says what was wrong; a missing agent is reported with how to start one.
import test from 'ava';
import { weft } from '../helpers/weft-cli.ts';
import { formatToken } from '../../controlplane/security/token.ts';

const NO_AGENT = { WEFT_SOCKET: '/tmp/weft-test-no-agent.sock' };
const GOOD_TOKEN = formatToken({ caDigest: new Uint8Array(32).fill(3), secret: new Uint8Array(32).fill(4) });

for (const [args, message] of [
  [['frobnicate'], /unknown command/],
  [['members', '--bogus'], /unknown option/],
  [['init', '--default-addr-pool', '10.0.0.0/33'], /--default-addr-pool: must be an IPv4 CIDR/],
  [['init', '--default-addr-pool', '100.64.0.0/28'], /must be \/24 or larger/],
  [['join', '198.18.0.1'], /required option '--token <token>'/],
  [['join', '--token', GOOD_TOKEN], /missing required argument 'addr'/],
  [['join', '--token', 'nonsense', '198.18.0.1'], /malformed join token/],
  [['join', '--token', GOOD_TOKEN, 'not-an-ip'], /is not ADDR\[:PORT\]/],
  [['join', '--token', GOOD_TOKEN, '198.18.0.1:99999'], /is not ADDR\[:PORT\]/],
  [['node', 'rm'], /missing required argument 'node'/],
  [['token', '--rotate=yes'], /unknown option '--rotate=yes'/],
  [['members', '--format', 'yaml'], /--format must be table or json, got "yaml"/],
  [['node', 'ls', '-q', '--json'], /-q\/--quiet prints identifiers only/],
  [['status', '--json', '--format', 'table'], /--json and --format table contradict/],
  [['service', 'create', 'web', '--network', 'app', '--health', 'bad'], /^weft: --health: health check "bad" must be/],
  [['completion', 'fish'], /the shell must be bash or zsh, got "fish"/],
  [['agent', '--listen-addr', 'everywhere'], /--listen-addr: must be IP:PORT/],
  [['agent', '--advertise-addr', '1.2.3'], /--advertise-addr: must be an IPv4 address/],
  [['agent', '--gossip-port', 'abc'], /--gossip-port: /],
  [['agent', '--dns-upstream', 'x'], /--dns-upstream\.0: must be IP/],
  [['lab', 'up', '--hosts', '0'], /--hosts must be an integer from 1 to 64/],
  [['lab', 'up', '--prefix', 'Bad_Prefix'], /lab prefix "Bad_Prefix" must be/],
  [['lab', 'exec', 'h1'], /missing required argument 'command'/],
] as const) {
  test(`weft ${args.join(' ')} → exit 2 with a reason`, async (t) => {
    const r = await weft([...args], NO_AGENT);
    t.is(r.exitCode, 2, r.stderr);
    t.regex(r.stderr, message);
    t.regex(r.stderr, /^weft: /, 'one prefix for every CLI error, commander\'s included');
  });
}

for (const args of [['members'], ['status'], ['token'], ['leave'], ['node', 'rm', 'h2'], ['init'], ['join', '--token', GOOD_TOKEN, '198.18.0.1']]) {
  test(`weft ${args.join(' ')} without an agent says how to start one (exit 1)`, async (t) => {
    const r = await weft(args, NO_AGENT);
    t.is(r.exitCode, 1);
    t.regex(r.stderr, /no weft agent is answering on \/tmp\/weft-test-no-agent\.sock; start one with `weft agent`/);
  });
}

test('--help and --version exit 0', async (t) => {
  t.is((await weft(['--help'])).exitCode, 0);
  const version = await weft(['--version']);
  t.is(version.exitCode, 0);
  t.regex(version.stdout, /^\d+\.\d+\.\d+/);
});
