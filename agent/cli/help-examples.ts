// "Examples:" at the end of a command's --help, as Docker's: the quickest way
// to learn a command is one line that works.
import type { Command } from 'commander';

export function examples(lines: string[]): string {
  return `\nExamples:\n${lines.map((line) => `  ${line}`).join('\n')}\n`;
}

export function withExamples(command: Command, lines: string[]): Command {
  return command.addHelpText('after', examples(lines));
}
