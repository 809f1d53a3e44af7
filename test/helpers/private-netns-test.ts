// For test files whose agents run inside the test process (Agent.start): an
// agent makes its gateway bridge (weft_gw), its nftables tables and its
// resolver's address in the network namespace it runs in, which must never be
// the machine's own. A process cannot move itself into another namespace, so
// such a file, run as usual, registers a single test that runs the same file
// again with ava inside a fresh namespace (test/helpers/private-netns.ts) and
// passes when every test inside passes; the inner run's report is logged.
import test from 'ava';
import { execa } from 'execa';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { privateNetns } from './private-netns.ts';

const INSIDE = 'WEFT_TEST_IN_PRIVATE_NETNS';
const INNER_TIMEOUT_MS = 25 * 60_000;

/** Anything called or read on it does nothing: the file's own tests and hooks, outside the namespace. */
const inert: unknown = new Proxy(() => undefined, { get: () => inert, apply: () => undefined });

/**
 * ava's `test` inside the namespace; outside it, a stand-in that registers
 * nothing, after registering the one test that runs the file inside.
 */
export function testInPrivateNetns(fileUrl: string, tag: string): typeof test {
  if (process.env[INSIDE] === '1') return test;
  const file = fileURLToPath(fileUrl);
  test(`every test of ${basename(file)} passes with its agents in a network namespace of their own`, async (t) => {
    t.timeout(INNER_TIMEOUT_MS + 60_000);
    const netns = await privateNetns(tag);
    t.teardown(() => netns.remove());
    const avaCli = join(dirname(fileURLToPath(import.meta.resolve('ava'))), 'cli.js'); // ava's main and cli entrypoints sit side by side
    const [command, args] = netns.wrap(process.execPath, [avaCli, '--verbose', file]);
    const run = await execa(command, args, { env: { [INSIDE]: '1' }, reject: false, all: true, timeout: INNER_TIMEOUT_MS });
    t.log(run.all);
    t.is(run.exitCode, 0, `ava inside ${netns.name} failed`);
  });
  return inert as typeof test;
}
