// A long-lived Python helper process that takes JSON-line requests
// {"id", "items"} and answers {"id", "results"} (or {"id", "error"}), one
// result per item, in order: the agent's nft workers (lb/nft-worker.py) and
// its link worker (link-worker/link-worker.py). Requests are pipelined over
// stdin/stdout. If the process dies or stops answering, pending requests fail
// with the reason, the next request starts a new process, and `generation`
// changes so a caller that keeps state in the process knows to re-apply it.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';

/** Debian's python3, which has the modules the workers import (python3-nftables); another python3 on PATH may not. */
export const PYTHON = '/usr/bin/python3';

/**
 * A request takes milliseconds, or seconds for a resync of thousands of
 * namespaces, and requests queue in the worker. A worker that has answered
 * nothing for this long while requests wait is stuck (say, a netlink read
 * that never ends), and every later change of the load balancer and the host
 * guard would wait behind it: it is killed, its requests fail at once, and
 * the next request starts a new one.
 */
export const REPLY_TIMEOUT_MS = 60_000;
/** After close, how long to wait for the worker to exit before giving up on it (a process stuck in the kernel outlives SIGKILL). */
const CLOSE_WAIT_MS = 5_000;

/**
 * The worker could not take the request at all: it is closed, or its process
 * could not be started. Nothing of the request ran, so a caller may do the
 * work another way.
 */
export class WorkerUnavailableError extends Error {
  override name = 'WorkerUnavailableError';
}

interface Pending<Result> {
  resolve: (results: Result[]) => void;
  reject: (error: Error) => void;
}

export interface PythonWorkerOptions {
  /** The worker's argv. */
  command: readonly [string, ...string[]];
  /** How errors name it: "the nftables worker". */
  label: string;
  /** Said when the process stops: what to check ("is python3-nftables installed?"). */
  hint: string;
  replyTimeoutMs?: number | undefined;
}

/** What a caller of a particular worker may set: tests put a stand-in argv or a short deadline there. */
export interface WorkerProcessOptions {
  replyTimeoutMs?: number;
  /** The worker's argv. Default: Debian's python3 running the worker's script. */
  command?: readonly [string, ...string[]];
}

export class PythonWorker<Item, Result> {
  #child: ChildProcessWithoutNullStreams | undefined;
  #nextId = 1;
  readonly #pending = new Map<number, Pending<Result>>();
  #stderr = '';
  #closed = false;
  /** Armed while requests wait; each answer re-arms it (see REPLY_TIMEOUT_MS). */
  #watchdog: NodeJS.Timeout | undefined;
  readonly #replyTimeoutMs: number;
  readonly #command: readonly [string, ...string[]];
  readonly #label: string;
  readonly #hint: string;
  /** Bumped whenever a new worker process starts: its namespaces hold whatever the old one left. */
  generation = 0;

  constructor(options: PythonWorkerOptions) {
    this.#replyTimeoutMs = options.replyTimeoutMs ?? REPLY_TIMEOUT_MS;
    this.#command = options.command;
    this.#label = options.label;
    this.#hint = options.hint;
  }

  run(items: readonly Item[]): Promise<Result[]> {
    if (items.length === 0) return Promise.resolve([]);
    // After close a request must not start a worker nobody would ever close.
    if (this.#closed) return Promise.reject(new WorkerUnavailableError(`${this.#label} is closed (the agent is stopping)`));
    const child = this.#ensure();
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      if (this.#watchdog === undefined) this.#arm(child);
      child.stdin.write(JSON.stringify({ id, items }) + '\n');
    });
  }

  #arm(child: ChildProcessWithoutNullStreams): void {
    clearTimeout(this.#watchdog);
    this.#watchdog = setTimeout(() => {
      if (this.#child !== child) return;
      this.#detach(new Error(`${this.#label} was killed and will be restarted: no answer within ${this.#replyTimeoutMs / 1000} s with ${this.#pending.size} request(s) waiting`));
      child.kill('SIGKILL');
    }, this.#replyTimeoutMs);
  }

  #disarm(): void {
    clearTimeout(this.#watchdog);
    this.#watchdog = undefined;
  }

  /** Forgets the current worker process and fails what waits on it; the next request starts another. */
  #detach(error: Error): void {
    this.#child = undefined;
    this.#disarm();
    for (const pending of this.#pending.values()) pending.reject(error);
    this.#pending.clear();
  }

  #ensure(): ChildProcessWithoutNullStreams {
    if (this.#child) return this.#child;
    const [file, ...args] = this.#command;
    const child = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    this.generation++;
    this.#stderr = '';
    child.stdin.on('error', () => undefined); // reported through 'exit'
    child.stderr.on('data', (chunk: Buffer) => {
      this.#stderr = (this.#stderr + chunk.toString()).slice(-2000);
    });
    createInterface({ input: child.stdout }).on('line', (line) => {
      if (this.#child === child) this.#onLine(line, child);
    });
    let started = false;
    child.once('spawn', () => {
      started = true;
    });
    const gone = (reason: string) => {
      if (this.#child !== child) return;
      const message = `${this.#label} stopped (${reason})${this.#stderr ? `: ${this.#stderr.trim()}` : ''}; ${this.#hint}`;
      this.#detach(started ? new Error(message) : new WorkerUnavailableError(message));
    };
    child.once('error', (error) => gone(error.message));
    child.once('exit', (code, signal) => gone(signal ? `signal ${signal}` : `exit code ${code}`));
    this.#child = child;
    return child;
  }

  #onLine(line: string, child: ChildProcessWithoutNullStreams): void {
    let reply: { id?: unknown; results?: unknown; error?: unknown };
    try {
      reply = JSON.parse(line) as typeof reply;
    } catch {
      return;
    }
    const pending = typeof reply.id === 'number' ? this.#pending.get(reply.id) : undefined;
    if (!pending) return;
    this.#pending.delete(reply.id as number);
    if (this.#pending.size > 0) this.#arm(child);
    else this.#disarm();
    if (Array.isArray(reply.results)) pending.resolve(reply.results as Result[]);
    else pending.reject(new Error(`${this.#label} refused a request: ${String(reply.error)}`));
  }

  /** The worker's pid (tests kill it to check recovery). */
  get pid(): number | undefined {
    return this.#child?.pid;
  }

  async close(): Promise<void> {
    this.#closed = true;
    const child = this.#child;
    if (!child) return;
    const timers: NodeJS.Timeout[] = [];
    const exited = new Promise((resolve) => {
      child.once('exit', resolve);
      timers.push(setTimeout(() => child.kill('SIGKILL'), 2_000), setTimeout(resolve, CLOSE_WAIT_MS));
    });
    child.stdin.end();
    await exited;
    for (const timer of timers) clearTimeout(timer);
    this.#detach(new Error(`${this.#label} is closed (the agent is stopping)`));
  }
}
