// The TypeScript side of nft-worker.py: one long-lived worker process that
// applies nftables scripts in many namespaces (see the .py file for why).
// Requests are pipelined over stdin/stdout as JSON lines. If the worker dies,
// pending requests fail with the reason, the next request starts a new worker,
// and `generation` changes so the caller knows to re-apply everything.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const WORKER = fileURLToPath(new URL('./nft-worker.py', import.meta.url));
/** Debian's python3 has the nftables module (package python3-nftables); another python3 on PATH may not. */
const PYTHON = '/usr/bin/python3';

export type WorkerChange = { script: string } | { table: string; chains: [string, readonly string[]][] };
/** Conntrack entries to delete after the change: [VIP, protocol, backend] (see conntrack_netlink.py). */
export type WorkerFlows = { flows: readonly (readonly [string, 'tcp' | 'udp', string])[] };
export type WorkerItem =
  | ({ netns: string } & WorkerChange & Partial<WorkerFlows>)
  | ({ netns: string } & WorkerFlows)
  | { netns: string; forget: true }
  | { netns: string; list: string };
/** `output`: for a list item, the table as nft JSON, or null when there is no such table. */
export type WorkerResult = { ok: true; output?: string | null } | { ok: false; error: string };

/**
 * A request takes milliseconds, or seconds for a resync of thousands of
 * namespaces. A worker that has not answered by then is stuck (say, a netlink
 * read that never ends), and every later change of the load balancer and the
 * host guard would wait behind it: it is killed, its requests fail, and the
 * next request starts a new one.
 */
export const REPLY_TIMEOUT_MS = 60_000;

interface Pending {
  resolve: (results: WorkerResult[]) => void;
  reject: (error: Error) => void;
}

export interface NftWorkerOptions {
  replyTimeoutMs?: number;
  /** The worker's argv; tests put a stand-in there. Default: Debian's python3 running nft-worker.py. */
  command?: readonly [string, ...string[]];
}

export class NftWorker {
  #child: ChildProcessWithoutNullStreams | undefined;
  #nextId = 1;
  readonly #pending = new Map<number, Pending>();
  #stderr = '';
  #closed = false;
  /** Why the agent killed the current worker, when it did. */
  #killedFor: string | undefined;
  readonly #replyTimeoutMs: number;
  readonly #command: readonly [string, ...string[]];
  /** Bumped whenever a new worker process starts: its namespaces hold whatever the old one left. */
  generation = 0;

  constructor(options: NftWorkerOptions = {}) {
    this.#replyTimeoutMs = options.replyTimeoutMs ?? REPLY_TIMEOUT_MS;
    this.#command = options.command ?? [PYTHON, WORKER];
  }

  run(items: readonly WorkerItem[]): Promise<WorkerResult[]> {
    if (items.length === 0) return Promise.resolve([]);
    // After close a request must not start a worker nobody would ever close.
    if (this.#closed) return Promise.reject(new Error('the nft worker is closed (the agent is stopping)'));
    const child = this.#ensure();
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => this.#kill(child, `no reply within ${this.#replyTimeoutMs / 1000} s`), this.#replyTimeoutMs);
      const settle = () => clearTimeout(timer);
      this.#pending.set(id, { resolve: (results) => { settle(); resolve(results); }, reject: (error) => { settle(); reject(error); } });
      child.stdin.write(JSON.stringify({ id, items }) + '\n');
    });
  }

  #kill(child: ChildProcessWithoutNullStreams, reason: string): void {
    if (this.#child !== child) return;
    this.#killedFor = reason;
    child.kill('SIGKILL');
  }

  #ensure(): ChildProcessWithoutNullStreams {
    if (this.#child) return this.#child;
    const [file, ...args] = this.#command;
    const child = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    this.generation++;
    this.#stderr = '';
    this.#killedFor = undefined;
    child.stdin.on('error', () => undefined); // reported through 'exit'
    child.stderr.on('data', (chunk: Buffer) => {
      this.#stderr = (this.#stderr + chunk.toString()).slice(-2000);
    });
    createInterface({ input: child.stdout }).on('line', (line) => this.#onLine(line));
    const gone = (reason: string) => {
      if (this.#child !== child) return;
      this.#child = undefined;
      const error = this.#killedFor !== undefined
        ? new Error(`the nftables worker was killed and will be restarted: ${this.#killedFor}`)
        : new Error(`the nftables worker stopped (${reason})${this.#stderr ? `: ${this.#stderr.trim()}` : ''}; is python3-nftables installed?`);
      for (const pending of this.#pending.values()) pending.reject(error);
      this.#pending.clear();
    };
    child.once('error', (error) => gone(error.message));
    child.once('exit', (code, signal) => gone(signal ? `signal ${signal}` : `exit code ${code}`));
    this.#child = child;
    return child;
  }

  #onLine(line: string): void {
    let reply: { id?: unknown; results?: unknown; error?: unknown };
    try {
      reply = JSON.parse(line) as typeof reply;
    } catch {
      return;
    }
    const pending = typeof reply.id === 'number' ? this.#pending.get(reply.id) : undefined;
    if (!pending) return;
    this.#pending.delete(reply.id as number);
    if (Array.isArray(reply.results)) pending.resolve(reply.results as WorkerResult[]);
    else pending.reject(new Error(`the nftables worker refused a request: ${String(reply.error)}`));
  }

  /** The worker's pid (tests kill it to check recovery). */
  get pid(): number | undefined {
    return this.#child?.pid;
  }

  async close(): Promise<void> {
    this.#closed = true;
    const child = this.#child;
    if (!child) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.stdin.end();
    const timer = setTimeout(() => child.kill('SIGKILL'), 2_000);
    await exited;
    clearTimeout(timer);
  }
}
