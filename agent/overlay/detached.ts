// Workloads started with `weft run --detach`: their output goes to
// <data dir>/sandboxes/<id>.log, and a sandbox goes away when its process does.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Dataplane } from '../../dataplane/index.ts';
import { isProcessAlive } from '../../lib/process-alive.ts';
import type { LocalSandbox } from './local-state.ts';

const WATCH_INTERVAL_MS = 2_000;

export class DetachedProcesses {
  readonly #dataplane: Dataplane;
  readonly #logDir: string;
  readonly #log: Logger;
  #timer: NodeJS.Timeout | undefined;

  constructor(dataplane: Dataplane, dataDir: string, log: Logger) {
    this.#dataplane = dataplane;
    this.#logDir = join(dataDir, 'sandboxes');
    this.#log = log;
  }

  /** Starts the command in the sandbox; returns its process ID. */
  start(record: LocalSandbox, command: string[]): number {
    mkdirSync(this.#logDir, { recursive: true, mode: 0o700 });
    return this.#dataplane.startDetached(record.netns, command, join(this.#logDir, `${record.id}.log`), (error) =>
      this.#log.warn({ sandbox: record.netns, err: error.message }, 'the sandbox command failed to start'),
    );
  }

  /**
   * Stops a `weft run --detach` workload before its sandbox's namespace goes: it lives in its
   * sandbox, so removing the sandbox stops it (as `docker stop` then `docker rm` would), instead of
   * leaving it running, unwatched, in a namespace nobody can name any more. SIGTERM now; the SIGKILL
   * that follows a grace period is not waited for, so the caller does not hold its lock meanwhile.
   */
  stopWorkload(record: LocalSandbox): void {
    if (record.pid <= 0) return;
    const { signalled, stopped } = this.#dataplane.stopProcessesIn(record.netns);
    if (signalled === 0) return;
    void stopped.then((outcome) => this.#log.info({ sandbox: record.netns, pid: record.pid, processes: signalled, outcome }, 'stopped the workload of a removed sandbox'));
  }

  /** Every few seconds, calls `exited` for each sandbox whose detached process is gone. */
  watch(sandboxes: () => LocalSandbox[], exited: (record: LocalSandbox) => Promise<void>): void {
    this.#timer = setInterval(() => void this.#reap(sandboxes(), exited), WATCH_INTERVAL_MS);
  }

  async #reap(sandboxes: LocalSandbox[], exited: (record: LocalSandbox) => Promise<void>): Promise<void> {
    for (const record of sandboxes) {
      if (record.pid > 0 && !isProcessAlive(record.pid)) {
        this.#log.info({ sandbox: record.netns, pid: record.pid }, 'sandbox process exited; removing the sandbox');
        await exited(record).catch((e: Error) => this.#log.warn({ err: e.message }, 'removing an exited sandbox failed'));
      }
    }
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
  }
}
