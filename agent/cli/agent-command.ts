// `weft agent`: runs the daemon in the foreground until SIGTERM/SIGINT.
// Only the flags live here, made from the option table (config-options.ts):
// the daemon (libp2p, the data plane) is imported when the command runs, so
// the client commands never load it.
import type { Command } from 'commander';
import { examples } from './help-examples.ts';
import type { AgentFlags } from '../config.ts';
import { CONFIG_FIELDS, optionOf } from '../config-options.ts';

export function registerAgentCommand(program: Command): void {
  const command = program
    .command('agent')
    .description('run the weft agent (the daemon) in the foreground')
    .option('--config <file>', `JSON config file (fields: ${CONFIG_FIELDS.join(', ')})`);
  for (const field of CONFIG_FIELDS) {
    const { flag, help, kind } = optionOf(field);
    if (flag === undefined) continue;
    if (kind === 'list') command.option(flag, help, (v: string, all: string[] = []) => [...all, v]);
    else command.option(flag, help);
  }
  command
    .addHelpText('after', environmentHelp())
    .addHelpText('after', examples(['weft agent', 'weft agent --advertise-addr 198.18.0.1 --data-dir /var/lib/weft', 'weft agent --config /etc/weft/agent.json --log-level debug']))
    .action(async (flags: AgentFlags, self: Command) => {
      const globals = self.optsWithGlobals<{ apiSocket?: string }>();
      const { runAgent } = await import('./run-agent.ts');
      await runAgent({ ...flags, apiSocket: globals.apiSocket });
    });
}

/** The variables, a few per line: flags win over them, they win over --config. */
function environmentHelp(): string {
  const variables = CONFIG_FIELDS.flatMap((field) => optionOf(field).env ?? []);
  const lines: string[] = [];
  for (let i = 0; i < variables.length; i += 4) lines.push(`  ${variables.slice(i, i + 4).join(' ')}`);
  return ['', 'Environment (flags win over it, it wins over --config):', ...lines, ''].join('\n');
}
