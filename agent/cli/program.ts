// The `weft` command tree. Building it loads only commander and the command
// definitions; each command imports what it needs (the daemon, gRPC, zod)
// when it runs.
import { Command } from 'commander';
import { registerAgentCommand } from './agent-command.ts';
import { registerClusterCommands } from './cluster-commands.ts';
import { registerOverlayCommands } from './overlay-commands.ts';
import { registerServiceCommands } from './service-commands.ts';
import { registerLabCommands } from '../../deploy/lab/lab-command.ts';
import { completionScript, SHELLS } from './completion.ts';
import { examples } from './help-examples.ts';
import { WEFT_VERSION } from '../version.ts';

/** Every CLI error, ours and commander's, starts with this. */
export const ERROR_PREFIX = 'weft: ';

export function buildProgram(): Command {
  const program = new Command('weft')
    .description('multi-host overlay network agent')
    .version(WEFT_VERSION)
    .option('--api-socket <path>', 'agent API socket (default $WEFT_SOCKET or /run/weft/weft.sock)')
    .configureOutput({ outputError: (text, write) => write(ERROR_PREFIX + text.replace(/^error: /, '')) })
    .showHelpAfterError('(run with --help for usage)')
    .addHelpText('after', examples(['weft init', 'weft join --token WEFT-1-... 198.18.0.1', 'weft node ls', 'weft network create app', 'weft run --network app --name web -- python3 -m http.server 80', 'source <(weft completion bash)']))
    .exitOverride();
  registerAgentCommand(program);
  registerClusterCommands(program);
  registerOverlayCommands(program);
  registerServiceCommands(program);
  registerLabCommands(program);
  program
    .command('completion')
    .description(`print a shell completion script (${SHELLS.join(', ')})`)
    .argument('<shell>', SHELLS.join(' or '))
    .addHelpText('after', examples(['source <(weft completion bash)', 'weft completion zsh > "${fpath[1]}/_weft"']))
    .action((shell: string) => {
      process.stdout.write(completionScript(program, shell));
    });
  for (const command of allCommands(program)) command.exitOverride();
  return program;
}

function allCommands(command: Command): Command[] {
  return command.commands.flatMap((c) => [c, ...allCommands(c)]);
}
