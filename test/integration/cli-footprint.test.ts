// The client commands must not load the daemon (libp2p, the data plane, the
// cluster and overlay code) nor import Node's builtins as ES modules: that is
// what makes `weft members` answer at once.
import test from 'ava';
import { execa } from 'execa';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CLI_MAIN } from '../helpers/weft-cli.ts';

const TRACE_HOOK = fileURLToPath(new URL('../helpers/module-trace.mjs', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'weft-footprint-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

// Anything under these is daemon code; the client path needs none of it.
const DAEMON = [/\/node_modules\/(libp2p|@libp2p|@chainsafe|pino|@peculiar|dns-packet)\//, /\/dataplane\//, /\/agent\/(daemon|cluster|overlay|services|allocation)\//, /\/deploy\/lab\/lab\.ts$/];

// A gRPC client: node:http2 with grpc-js or a protobuf codec took `weft node ls`
// over its 60 MB budget; the CLI speaks the API's JSON-line framing instead.
const GRPC_CLIENT = [/^node:http2$/, /\/node_modules\/(@grpc|protobufjs|@protobufjs)\//];

async function modulesLoadedBy(args: string[]): Promise<string[]> {
  const trace = join(dir, `${args.join('_').replace(/[^a-z0-9_-]/gi, '')}.txt`);
  await execa(process.execPath, ['--disable-warning=ExperimentalWarning', '--import', TRACE_HOOK, CLI_MAIN, ...args], {
    reject: false,
    env: { WEFT_MODULE_TRACE: trace, WEFT_SOCKET: join(dir, 'no-agent.sock') },
  });
  return readFileSync(trace, 'utf8').split('\n').filter((l) => l !== '');
}

for (const args of [['--version'], ['--help'], ['members'], ['node', 'ls', '-q'], ['endpoints'], ['network', 'ls'], ['service', 'ls'], ['status'], ['lab', '--help'], ['completion', 'bash']]) {
  test(`weft ${args.join(' ')} loads no daemon module`, async (t) => {
    const loaded = await modulesLoadedBy(args);
    t.true(loaded.some((url) => url.endsWith('/agent/cli/main.ts')), 'the trace saw the CLI itself');
    const daemon = loaded.filter((url) => DAEMON.some((pattern) => pattern.test(url)));
    t.deepEqual(daemon.slice(0, 10), [], `${daemon.length} daemon modules loaded`);
    const grpcClient = loaded.filter((url) => GRPC_CLIENT.some((pattern) => pattern.test(url)));
    t.deepEqual(grpcClient.slice(0, 10), [], `${grpcClient.length} gRPC client modules loaded`);
    // weft's own modules take builtins with process.getBuiltinModule: an ES
    // import of one made Node build its facade (~11 ms of a 150 ms budget).
    const esmBuiltins = loaded.filter((line) => line.startsWith('esm-builtin ') && !line.includes('/node_modules/'));
    t.deepEqual(esmBuiltins, [], 'builtins imported as ES modules on the client path');
  });
}
