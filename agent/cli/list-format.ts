// The output options every listing and inspect command takes, as Docker's:
// `-q/--quiet` (identifiers only, one a line, for scripts), `--format
// json|table`, and the older `--json`, kept as a synonym of `--format json`.
import { Option, type Command } from 'commander';
import { printJson, printRecord, printTable } from './output.ts';
import { UsageError } from './usage.ts';

export const FORMATS = ['table', 'json'] as const;
export type Format = (typeof FORMATS)[number];

export interface FormatFlags {
  format?: string;
  json?: boolean;
  quiet?: boolean;
}

export interface FormatChoices {
  /** What -q prints ("network names"); without it the command has no -q. */
  quiet?: string;
  /** table for lists, json for inspect (as Docker's inspect). */
  defaultFormat?: Format;
}

/** Adds --format and --json, and -q/--quiet if the command lists things. */
export function withFormatOptions(command: Command, choices: FormatChoices = {}): Command {
  command.addOption(new Option('--format <format>', `output format: ${FORMATS.join(' or ')} (default ${choices.defaultFormat ?? 'table'})`));
  command.option('--json', 'same as --format json');
  if (choices.quiet !== undefined) command.option('-q, --quiet', `print only ${choices.quiet}, one a line`);
  return command;
}

/** The format the flags ask for; a bad or contradictory choice is a usage error naming the flag. */
export function chosenFormat(flags: FormatFlags, defaultFormat: Format = 'table'): Format {
  const format = flags.format;
  if (format !== undefined && !(FORMATS as readonly string[]).includes(format)) {
    throw new UsageError(`--format must be ${FORMATS.join(' or ')}, got "${format}"`);
  }
  if (flags.json && format === 'table') throw new UsageError('--json and --format table contradict each other; give one');
  if (flags.quiet && (flags.json || format !== undefined)) throw new UsageError(`-q/--quiet prints identifiers only; it cannot be combined with ${flags.json ? '--json' : '--format'}`);
  return flags.json ? 'json' : (format as Format | undefined) ?? defaultFormat;
}

export interface Listing<T> {
  items: T[];
  /** What -q prints for an item: the identifier other commands take. */
  id: (item: T) => string;
  json: (item: T) => unknown;
  headers: string[];
  row: (item: T) => string[];
}

/** Prints a list in the format the flags chose. Check the flags with chosenFormat before calling the agent. */
export function printListing<T>(flags: FormatFlags, listing: Listing<T>): void {
  if (flags.quiet) {
    if (listing.items.length > 0) process.stdout.write(listing.items.map(listing.id).join('\n') + '\n');
    return;
  }
  if (chosenFormat(flags) === 'json') return printJson(listing.items.map(listing.json));
  printTable(listing.headers, listing.items.map(listing.row));
}

/** Prints one object (inspect, status): JSON, or `key  value` lines with nested lists as tables. */
export function printInspect(flags: FormatFlags, value: Record<string, unknown>, defaultFormat: Format): void {
  if (chosenFormat(flags, defaultFormat) === 'json') return printJson(value);
  printRecord(value);
}
