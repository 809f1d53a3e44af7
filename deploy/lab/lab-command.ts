// `weft lab up | exec | down`: the multi-host lab on this machine. The lab
// itself (namespaces, the data plane's helpers) is imported when a lab
// command runs, so that the rest of the CLI does not load it.
import type { Command } from 'commander';
import { DEFAULT_PREFIX, validatePrefix } from './prefix.ts';
import { UsageError } from '../../agent/cli/usage.ts';
import { printTable } from '../../agent/cli/output.ts';
import { examples } from '../../agent/cli/help-examples.ts';
// (a builtin taken with process.getBuiltinModule, not `import`: docs/cli.md, "Startup")
const { spawnSync } = process.getBuiltinModule('node:child_process');

function prefixOf(opts: { prefix?: string }): string {
  try {
    return validatePrefix(opts.prefix ?? process.env['WEFT_LAB_PREFIX'] ?? DEFAULT_PREFIX);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

function integer(value: string, flag: string, min: number, max: number): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < min || n > max) throw new UsageError(`${flag} must be an integer from ${min} to ${max}, got "${value}"`);
  return n;
}

export function registerLabCommands(program: Command): void {
  const lab = program.command('lab').description('emulate several hosts on this machine (network namespaces), each running an agent');
  const prefixOption = '--prefix <prefix>';
  const prefixHelp = `name prefix of the lab's namespaces (default $WEFT_LAB_PREFIX or ${DEFAULT_PREFIX})`;

  lab
    .command('up')
    .description('create hosts h1..hN, start an agent on each, init on h1 and join the rest')
    .option('--hosts <n>', 'number of hosts', '3')
    .option('--mtu <bytes>', 'underlay MTU', '1500')
    .option(prefixOption, prefixHelp)
    .addHelpText('after', examples(['weft lab up', 'weft lab up --hosts 5 --mtu 1400', 'weft lab exec h2 -- weft node ls']))
    .action(async (opts: { hosts: string; mtu: string; prefix?: string }) => {
      const hosts = integer(opts.hosts, '--hosts', 1, 64);
      const mtu = integer(opts.mtu, '--mtu', 1280, 9000);
      const prefix = prefixOf(opts);
      const { labUp, withLabClient } = await import('./lab.ts');
      const started = Date.now();
      const state = await labUp({ hosts, mtu, prefix, progress: (m) => process.stderr.write(`lab: ${m}\n`) });
      process.stderr.write(`lab: ${hosts} hosts up in ${((Date.now() - started) / 1000).toFixed(1)} s\n\n`);
      const first = state.hosts[0]!;
      const reply = await withLabClient(first, (c) => c.call<{ members: Array<{ nodeId: string; name: string; address: string; state: string; incarnation: number }> }>('Members'));
      process.stdout.write(`Members as seen from ${first.name}:\n`);
      printTable(
        ['NODE ID', 'NAME', 'ADDRESS', 'STATE', 'INCARNATION'],
        reply.members.sort((a, b) => a.name.localeCompare(b.name, 'en', { numeric: true })).map((m) => [m.nodeId.slice(0, 12), m.name, m.address, m.state, String(m.incarnation)]),
      );
      process.stdout.write(`\nTry: weft lab exec h2 -- weft members\nStop: weft lab down\n`);
    });

  lab
    .command('exec')
    .description('run a command inside a lab host, with WEFT_SOCKET set to its agent')
    .option(prefixOption, prefixHelp)
    .argument('<host>', 'h1..hN')
    .argument('<command...>', 'command and arguments (put them after --)')
    .action(async (hostName: string, command: string[], opts: { prefix?: string }) => {
      const { labHost, REPO_BIN } = await import('./lab.ts');
      let host;
      try {
        host = labHost(prefixOf(opts), hostName);
      } catch (error) {
        throw new UsageError((error as Error).message);
      }
      const env = { ...process.env, WEFT_SOCKET: host.socket, PATH: `${REPO_BIN}:${process.env['PATH'] ?? ''}` };
      const result = spawnSync('ip', ['netns', 'exec', host.netns, ...command], { stdio: 'inherit', env });
      if (result.error) throw new Error(`cannot run ${command[0]} in ${hostName}: ${result.error.message}`);
      process.exitCode = result.status ?? 1;
    });

  lab
    .command('down')
    .description("stop the lab's agents and remove its namespaces and files")
    .option(prefixOption, prefixHelp)
    .action(async (opts: { prefix?: string }) => {
      const prefix = prefixOf(opts);
      const { labDown } = await import('./lab.ts');
      await labDown(prefix);
      process.stderr.write('lab: down\n');
    });
}
