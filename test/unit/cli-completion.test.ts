// Shell completion is generated from the commander program: every command and
// flag the CLI has is offered, in the right place, by real bash and zsh.
import test from 'ava';
import { execa } from 'execa';
import type { Command } from 'commander';
import { buildProgram } from '../../agent/cli/program.ts';
import { completionScript, completionTree } from '../../agent/cli/completion.ts';
import { UsageError } from '../../agent/cli/usage.ts';

const program = buildProgram();
const tree = completionTree(program);

function walkProgram(command: Command, path: string, out: Map<string, Command>): Map<string, Command> {
  out.set(path, command);
  for (const sub of command.commands) walkProgram(sub, `${path}/${sub.name()}`, out);
  return out;
}

test('the tree has every command of the program with its own flags and subcommands', (t) => {
  const commands = walkProgram(program, '', new Map());
  t.deepEqual(tree.map((n) => n.path).sort(), [...commands.keys()].sort());
  for (const node of tree) {
    const command = commands.get(node.path)!;
    for (const sub of command.commands) t.true(node.words.includes(sub.name()), `${node.path} offers ${sub.name()}`);
    for (const option of command.options) t.true(node.words.includes(option.long!), `${node.path} offers ${option.long}`);
    t.true(node.words.includes('--help'));
  }
  const nodeLs = tree.find((n) => n.path === '/node/ls')!;
  for (const flag of ['-q', '--quiet', '--format', '--json', '--api-socket']) t.true(nodeLs.words.includes(flag), flag);
  t.true(nodeLs.valueFlags.includes('--format'));
  t.false(nodeLs.valueFlags.includes('--quiet'));
});

test('an unknown shell is a usage error', (t) => {
  t.throws(() => completionScript(program, 'fish'), { instanceOf: UsageError, message: /bash or zsh, got "fish"/ });
});

/** Completions bash offers for the words typed so far (the last one is being completed). */
async function bashCompletes(words: string[]): Promise<string[]> {
  const script = `${completionScript(program, 'bash')}
COMP_WORDS=("$@"); COMP_CWORD=$((\${#COMP_WORDS[@]} - 1)); COMPREPLY=()
_weft_complete
printf '%s\\n' "\${COMPREPLY[@]}"`;
  const r = await execa('bash', ['-c', script, 'bash', ...words]);
  return r.stdout.split('\n').filter((l) => l !== '');
}

/** The same in zsh, with compadd and _files standing in for the completion system. */
async function zshCompletes(words: string[]): Promise<string[]> {
  const script = `compadd() { [[ $1 == -- ]] && shift; print -rl -- "$@"; }
_files() { print -r -- '(files)'; }
compdef() { : }
${completionScript(program, 'zsh')}
words=("$@"); CURRENT=$#
_weft`;
  const r = await execa('zsh', ['-f', '-c', script, 'zsh', ...words]);
  return r.stdout.split('\n').filter((l) => l !== '');
}

const CASES: Array<[string[], (offered: string[]) => boolean, string]> = [
  [['weft', 'net'], (o) => o.includes('network') && !o.includes('node'), 'command names by prefix'],
  [['weft', 'network', ''], (o) => ['create', 'ls', 'inspect', 'rm'].every((w) => o.includes(w)), 'subcommands'],
  [['weft', 'node', 'ls', '-'], (o) => ['-q', '--quiet', '--format', '--json'].every((w) => o.includes(w)), 'list flags'],
  [['weft', 'members', '--format', ''], (o) => o.includes('json') && o.includes('table') && !o.includes('--json'), 'values of --format'],
  [['weft', '--api-socket', '/tmp/x.sock', 'service', ''], (o) => o.includes('ls') && o.includes('create'), 'after a global flag and its value'],
];

for (const [words, check, what] of CASES) {
  test(`bash completes ${what}: ${words.join(' ')}`, async (t) => {
    const offered = await bashCompletes(words);
    t.true(check(offered), offered.join(' '));
  });
  test(`zsh completes ${what}: ${words.join(' ')}`, async (t) => {
    const offered = (await zshCompletes(words)).filter((w) => w.startsWith(words.at(-1)!));
    t.true(check(offered), offered.join(' '));
  });
}

test('both scripts are valid shell syntax', async (t) => {
  await t.notThrowsAsync(execa('bash', ['-n'], { input: completionScript(program, 'bash') }));
  await t.notThrowsAsync(execa('zsh', ['-n'], { input: completionScript(program, 'zsh') }));
});
