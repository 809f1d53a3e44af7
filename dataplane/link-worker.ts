// The TypeScript side of link-worker/link-worker.py: the `ip` batches of a
// container's start and stop run as netlink requests in one long-lived
// process instead of an `ip` process each (see the .py file for why). It sits
// behind the data plane's Runner, so the code that decides which lines to run
// is the same whichever runs them: a batch the worker can read goes to it,
// any other command (and a batch with a line it does not know) to the tool.
import { fileURLToPath } from 'node:url';
import type { Runner } from './exec.ts';
import { PYTHON, PythonWorker, type WorkerProcessOptions, WorkerUnavailableError } from './python-worker.ts';

/** The worker's script, for tests that start it inside a namespace of their own. */
export const LINK_WORKER_SCRIPT = fileURLToPath(new URL('./link-worker/link-worker.py', import.meta.url));

/** One batch: its namespace (a path, or null for the worker's own), its lines, and whether to go on after a failed line (ip's -force). */
export interface LinkBatch {
  netns: string | null;
  /** Whose lines they are: `ip`'s or `bridge`'s (fdb). */
  tool: 'ip' | 'bridge';
  lines: readonly string[];
  force: boolean;
}

export type LinkBatchResult =
  | { ok: true; unsupported?: true }
  | { ok: false; failures: [line: number, message: string][] }
  | { ok: false; error: string };

export type LinkWorkerOptions = WorkerProcessOptions;

export class LinkWorker extends PythonWorker<LinkBatch, LinkBatchResult> {
  constructor(options: LinkWorkerOptions = {}) {
    super({ command: options.command ?? [PYTHON, LINK_WORKER_SCRIPT], label: 'the link worker', hint: 'is /usr/bin/python3 installed?', replyTimeoutMs: options.replyTimeoutMs });
  }
}

/**
 * `base`, except that `ip` writes the worker can read go to it: batches
 * (`ip [-n NAME] [-force] -batch -`, `nsenter --net=PATH -- ip [-force]
 * -batch -`) and single commands (`ip [-n NAME] link del dev X`, ...). The
 * answer reads as the tool's would (exit code; for a batch "Command failed
 * -:N" after each failed line's message), so exec.ts handles it the same
 * either way. A worker that is closed or cannot start leaves the command to
 * the tool; one that died or hung with the command fails it like a tool
 * killed midway (some lines may have run): the caller's retry or the periodic
 * reconcile takes over.
 */
export function linkWorkerRunner(base: Runner, worker: Pick<LinkWorker, 'run'>): Runner {
  return async (file, args, input) => {
    const command = commandOf(file, args, input);
    if (command === undefined) return base(file, args, input);
    let result: LinkBatchResult | undefined;
    try {
      [result] = await worker.run([command.batch]);
    } catch (error) {
      // Nothing ran (closed, or no process): the tool does it. A worker that died with the
      // request may have run some of it: that fails like a tool killed midway.
      if (error instanceof WorkerUnavailableError) return base(file, args, input);
      return { exitCode: -1, stdout: '', stderr: (error as Error).message };
    }
    if (result === undefined) return { exitCode: -1, stdout: '', stderr: 'the link worker gave no result' };
    if (result.ok) return result.unsupported ? base(file, args, input) : { exitCode: 0, stdout: '', stderr: '' };
    if ('error' in result) return { exitCode: 1, stdout: '', stderr: result.error };
    // ip exits 2 when the kernel refused a single command; a batch marks each failed line.
    if (command.single) {
      const message = result.failures.map(([, message]) => message).join('\n');
      // As ip: 1 for a name it could not find, 2 for a request the kernel refused.
      return { exitCode: message.startsWith('Cannot find device') ? 1 : 2, stdout: '', stderr: message };
    }
    return { exitCode: 1, stdout: '', stderr: result.failures.map(([line, message]) => `${message}\nCommand failed -:${line}`).join('\n') };
  };
}

/** The batch a command line stands for, or undefined when it is not one the worker takes. */
export function commandOf(file: string, args: readonly string[], input: string | undefined): { batch: LinkBatch; single: boolean } | undefined {
  let netns: string | null = null;
  let rest = [...args];
  const tool = file === 'nsenter' ? rest[2] : file;
  if (tool !== 'ip' && tool !== 'bridge') return undefined;
  if (file === 'nsenter') {
    const net = /^--net=(\/.+)$/.exec(rest[0] ?? '');
    if (!net || rest[1] !== '--') return undefined;
    netns = net[1]!;
    rest = rest.slice(3);
  } else if (rest[0] === '-n') {
    const name = rest[1] ?? '';
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(name) || name === '.' || name === '..') return undefined;
    netns = `/run/netns/${name}`;
    rest = rest.slice(2);
  }
  if (input === undefined) {
    // One command: its words become one line, so none may hold a blank (it would split into other words).
    if (rest.length === 0 || rest.some((word) => word.startsWith('-') || !/^[!-~]+$/.test(word))) return undefined;
    return { batch: { netns, tool, lines: [rest.join(' ')], force: false }, single: true };
  }
  const force = rest[0] === '-force';
  if (force) rest = rest.slice(1);
  if (rest.length !== 2 || rest[0] !== '-batch' || rest[1] !== '-') return undefined;
  const lines = input.split('\n');
  if (lines.at(-1) === '') lines.pop();
  return { batch: { netns, tool, lines, force }, single: false };
}
