// The `weft` command. Exit codes: 0 ok, 1 failed, 2 bad usage.
import { Command, CommanderError } from 'commander';
import { registerAgentCommand } from './agent-command.ts';
import { registerClusterCommands } from './cluster-commands.ts';
import { registerOverlayCommands } from './overlay-commands.ts';
import { registerServiceCommands } from './service-commands.ts';
import { registerLabCommands } from '../../deploy/lab/lab-command.ts';
import { ApiCallError } from '../api/call-error.ts';
import { EXIT_FAILED, EXIT_USAGE, UsageError } from './usage.ts';
import { WEFT_VERSION } from '../version.ts';

function buildProgram(): Command {
  const program = new Command('weft')
    .description('multi-host overlay network agent')
    .version(WEFT_VERSION)
    .option('--api-socket <path>', 'agent API socket (default $WEFT_SOCKET or /run/weft/weft.sock)')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  registerAgentCommand(program);
  registerClusterCommands(program);
  registerOverlayCommands(program);
  registerServiceCommands(program);
  registerLabCommands(program);
  for (const command of allCommands(program)) command.exitOverride();
  return program;
}

function allCommands(command: Command): Command[] {
  return command.commands.flatMap((c) => [c, ...allCommands(c)]);
}

function fail(message: string, code: number): never {
  process.stderr.write(`weft: ${message}\n`);
  process.exit(code);
}

async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and version "errors" are successful exits; everything else commander raises is bad usage.
      if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version' || error.code === 'commander.help') process.exit(0);
      process.exit(EXIT_USAGE);
    }
    if (error instanceof UsageError) fail(error.message, EXIT_USAGE);
    if (error instanceof ApiCallError) fail(error.message, error.badRequest ? EXIT_USAGE : EXIT_FAILED);
    fail((error as Error).message ?? String(error), EXIT_FAILED);
  }
}

await main(process.argv);
