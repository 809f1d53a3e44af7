// The `weft` command. Exit codes: 0 ok, 1 failed, 2 bad usage.
import { CommanderError } from 'commander';
import { buildProgram, ERROR_PREFIX } from './program.ts';
import { ApiCallError } from '../api/call-error.ts';
import { EXIT_FAILED, EXIT_USAGE, UsageError } from './usage.ts';

function fail(message: string, code: number): never {
  process.stderr.write(`${ERROR_PREFIX}${message}\n`);
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
