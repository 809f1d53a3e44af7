// The only place that spawns ip, bridge and nft. Everything else builds argv
// or batch lines and hands them here, so errors always name the command and,
// for batches, the line that failed.
import { spawnTool, type RunResult } from './spawn-tool.ts';

export type { RunResult };

/**
 * Spawns one command. A function type rather than a class so unit tests can
 * put a model of the kernel behind it.
 */
export type Runner = (file: string, args: readonly string[], input?: string) => Promise<RunResult>;

/**
 * Runs commands as child processes. `wrapper` is prepended to every argv, e.g.
 * ['nsenter', '--net=/run/netns/h1', '--']: because the data plane reads and
 * writes network state only through the commands it spawns, that is the same as
 * running this process inside that namespace (tests and benches use it to play
 * two hosts from one process). Use nsenter, not `ip netns exec`: the latter also
 * enters a private mount namespace, so `ip netns add` under it creates names
 * nobody else can see (docs/dataplane.md, "Traps").
 */
export function processRunner(wrapper: readonly string[] = [], timeoutMs = COMMAND_TIMEOUT_MS): Runner {
  return async (file, args, input) => {
    const [cmd, ...pre] = wrapper.length > 0 ? wrapper : [file];
    const argv = wrapper.length > 0 ? [...pre, file, ...args] : [...args];
    return spawnTool(cmd!, argv, input, timeoutMs);
  };
}

/**
 * Every tool the data plane runs (ip, bridge, nft, tc) finishes in
 * milliseconds, or seconds for a batch of thousands of lines. One that does
 * not return holds up every operation queued behind it (a container's start
 * waits for the network's queue), so it is killed and fails like any failed
 * command: the caller's retry or the periodic reconcile takes over.
 */
export const COMMAND_TIMEOUT_MS = 60_000;

export class CommandError extends Error {
  readonly command: string;
  readonly exitCode: number;
  readonly stderr: string;
  constructor(command: string, exitCode: number, stderr: string, message?: string) {
    super(message ?? `\`${command}\` failed (exit ${exitCode}): ${stderr.trim() || 'no error output'}`);
    this.name = 'CommandError';
    this.command = command;
    this.exitCode = exitCode;
    this.stderr = stderr;
  }
}

export interface BatchFailure {
  /** 1-based line of the batch; undefined when the tool exited without naming it (ip neigh does). */
  lineNumber: number | undefined;
  line: string | undefined;
  message: string;
}

export class BatchError extends CommandError {
  readonly failures: BatchFailure[];
  constructor(command: string, exitCode: number, stderr: string, failures: BatchFailure[]) {
    const shown = failures.slice(0, 5).map((f) =>
      f.lineNumber === undefined ? `  ${f.message} (the tool stopped without naming the line)` : `  line ${f.lineNumber} \`${f.line ?? '?'}\`: ${f.message}`);
    const more = failures.length > 5 ? [`  ... and ${failures.length - 5} more`] : [];
    super(command, exitCode, stderr, [`\`${command}\` failed (exit ${exitCode}):`, ...shown, ...more].join('\n'));
    this.name = 'BatchError';
    this.failures = failures;
  }
}

function describe(file: string, args: readonly string[]): string {
  return [file, ...args].join(' ');
}

export async function run(runner: Runner, file: string, args: readonly string[]): Promise<string> {
  const result = await runner(file, args);
  if (result.exitCode !== 0) throw new CommandError(describe(file, args), result.exitCode, result.stderr);
  return result.stdout;
}

/** Runs a command whose `-j` output is JSON; empty output (some tools print nothing for no objects) is []. */
export async function runJson<T>(runner: Runner, file: string, args: readonly string[]): Promise<T> {
  const out = (await run(runner, file, args)).trim();
  if (out === '') return [] as T;
  try {
    return JSON.parse(out) as T;
  } catch (error) {
    throw new CommandError(describe(file, args), 0, '', `\`${describe(file, args)}\` printed output that is not JSON (${(error as Error).message}): ${out.slice(0, 200)}`);
  }
}

/**
 * Feeds `lines` to `file ...preArgs -force -batch -` in one process (one spawn
 * ~2 ms, one line ~20 µs). With -force the tool goes on after a failed line and
 * reports each as "Command failed -:N", so one bad entry does not hold back the
 * others. Exception: `ip neigh` exits the whole process on its first error
 * without naming the line; that failure has no line number.
 */
export async function runBatch(runner: Runner, file: string, preArgs: readonly string[], lines: readonly string[], options: { stopAtFirstError?: boolean } = {}): Promise<void> {
  if (lines.length === 0) return;
  for (const line of lines) {
    // A newline inside a line would smuggle in another command; a `#` would cut the line short (a comment).
    if (/[\n\r]/.test(line)) throw new Error(`refusing batch line with a line break: ${JSON.stringify(line)}`);
    if (line.includes('#')) throw new Error(`refusing batch line with a "#" (the tool would read the rest as a comment): ${JSON.stringify(line)}`);
  }
  // -force runs every line whatever fails before it; without it the tool stops at the first failure
  // (a batch that makes a link, then configures it, must not configure one that was there before).
  const args = [...preArgs, ...(options.stopAtFirstError ? [] : ['-force']), '-batch', '-'];
  const result = await runner(file, args, lines.join('\n') + '\n');
  if (result.exitCode === 0) return;
  throw new BatchError(describe(file, args), result.exitCode, result.stderr, parseBatchFailures(result.stderr, lines));
}

/**
 * Runs batches one after the other, each stopping at its first failure (no
 * -force): the create-first paths of the data plane, which make what they
 * expect to be missing and fall back to reading and repairing when that did
 * not work. False when a batch failed (the later ones did not run); other
 * errors (a refused line, a runner that could not spawn) are thrown.
 */
export async function tryBatches(runner: Runner, batches: readonly (readonly [file: string, preArgs: readonly string[], lines: readonly string[]])[]): Promise<boolean> {
  try {
    for (const [file, preArgs, lines] of batches) await runBatch(runner, file, preArgs, lines, { stopAtFirstError: true });
    return true;
  } catch (error) {
    if (error instanceof CommandError) return false;
    throw error;
  }
}

/** Pairs the tool's "Command failed -:N" markers with the error lines printed just before them. */
export function parseBatchFailures(stderr: string, lines: readonly string[]): BatchFailure[] {
  const failures: BatchFailure[] = [];
  let pending: string[] = [];
  for (const raw of stderr.split('\n')) {
    const text = raw.trim();
    if (text === '') continue;
    const marker = /^Command failed (?:-|\S+):(\d+)$/.exec(text);
    if (marker) {
      const lineNumber = Number(marker[1]);
      failures.push({ lineNumber, line: lines[lineNumber - 1], message: pending.join('; ') || 'failed' });
      pending = [];
    } else {
      pending.push(text);
    }
  }
  if (pending.length > 0) failures.push({ lineNumber: undefined, line: undefined, message: pending.join('; ') });
  if (failures.length === 0) failures.push({ lineNumber: undefined, line: undefined, message: 'failed without error output' });
  return failures;
}
