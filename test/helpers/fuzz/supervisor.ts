// Runs fuzz targets in a worker thread and watches it. A thread that makes no
// progress for `stallMs` is stopped and its current input recorded as a hang;
// a thread that dies (out of memory under `memoryLimitMb`, an exception that
// escaped the target, a native crash) is recorded as a crash of its current
// input. Either way a new thread resumes right after that input, so one bad
// input neither ends the run nor hides the ones after it.
import { Worker } from 'node:worker_threads';
import type { TargetStats, Finding } from './run.ts';
import { hex } from './run.ts';
import { makeInput, type FuzzTarget } from './target.ts';
import type { WorkerJob, WorkerMessage } from './worker.ts';

export interface SuperviseOptions {
  jobs: WorkerJob[];
  seed: number;
  stallMs?: number;
  memoryLimitMb?: number;
  /** For naming the input that killed a thread (makeInput needs its seeds). */
  targets: Map<string, FuzzTarget>;
  onResult?: (stats: TargetStats) => void;
}

const WORKER = new URL('./worker.ts', import.meta.url);

export async function supervise(options: SuperviseOptions): Promise<TargetStats[]> {
  const results = new Map<string, TargetStats>();
  let pending = options.jobs.filter((j) => j.inputs > 0);
  while (pending.length > 0) pending = await runWorker(pending, options, results);
  return options.jobs.map((j) => results.get(j.target)).filter((s): s is TargetStats => s !== undefined);
}

/** Runs `jobs` in one thread; returns what is left to run if the thread died. */
function runWorker(jobs: WorkerJob[], options: SuperviseOptions, results: Map<string, TargetStats>): Promise<WorkerJob[]> {
  const progress = new SharedArrayBuffer(12);
  const shared = new Int32Array(progress);
  const worker = new Worker(WORKER, {
    workerData: { jobs, seed: options.seed, progress },
    resourceLimits: { maxOldGenerationSizeMb: options.memoryLimitMb ?? 2048 },
  });
  const partial = new Map<number, TargetStats>();
  const finished = new Set<number>();
  return new Promise((resolve) => {
    let lastCount = -1;
    let lastChange = Date.now();
    let ended = false;
    const end = (death: { kind: Finding['kind']; message: string } | undefined): void => {
      if (ended) return;
      ended = true;
      clearInterval(watchdog);
      if (!death) return resolve([]);
      const position = Atomics.load(shared, 2);
      const index = Atomics.load(shared, 1);
      const job = jobs[position]!;
      if (finished.has(position)) return resolve(jobs.slice(position + 1));
      const target = options.targets.get(job.target)!;
      let input: Uint8Array;
      try {
        input = makeInput(target, options.seed, index);
      } catch {
        input = new Uint8Array();
      }
      const before = partial.get(position);
      const lost = index + 1 - job.start - (before?.inputs ?? 0);
      const stats: TargetStats = before ?? emptyStats(target);
      stats.inputs += lost;
      stats[death.kind === 'hang' ? 'hangs' : 'crashes']++;
      stats.findings.push({ index, kind: death.kind, message: death.message, input: hex(input), bytes: input.length, ms: death.kind === 'hang' ? Date.now() - lastChange : 0 });
      merge(results, stats);
      const rest = job.start + job.inputs - (index + 1);
      resolve([...(rest > 0 ? [{ target: job.target, inputs: rest, start: index + 1 }] : []), ...jobs.slice(position + 1)]);
    };
    const watchdog = setInterval(() => {
      const count = Atomics.load(shared, 0);
      if (count !== lastCount) {
        lastCount = count;
        lastChange = Date.now();
      } else if (Date.now() - lastChange > (options.stallMs ?? 10_000)) {
        end({ kind: 'hang', message: `no progress for ${Date.now() - lastChange} ms: stopped` });
        void worker.terminate();
      }
    }, 250);
    worker.on('message', (message: WorkerMessage) => {
      if (message.type === 'partial') partial.set(message.job, message.stats);
      else if (message.type === 'done') {
        finished.add(message.job);
        partial.delete(message.job);
        merge(results, message.stats);
        options.onResult?.(results.get(message.stats.target)!);
      } else {
        // A seed refused is a broken harness, not a finding: say so and fail the run.
        console.error(`fuzz harness: ${message.message}`);
        process.exitCode = 1;
        finished.add(message.job);
      }
    });
    worker.on('error', (error) => end({ kind: 'crash', message: `worker died: ${error.name}: ${error.message}`.slice(0, 400) }));
    worker.on('exit', (code) => end(code === 0 && finished.size === jobs.length ? undefined : { kind: 'crash', message: `worker exited with code ${code}` }));
  });
}

function emptyStats(target: FuzzTarget): TargetStats {
  return {
    target: target.name, group: target.group, rejects: target.rejects, inputs: 0, accepted: 0, rejected: 0, crashes: 0, hangs: 0,
    slowestMs: 0, seconds: 0, maxRssMb: 0, heapMb: [], findings: [],
  };
}

/** Adds one segment's counts to the target's (a target resumed after a death has several). */
function merge(results: Map<string, TargetStats>, segment: TargetStats): void {
  const total = results.get(segment.target);
  if (!total) {
    results.set(segment.target, { ...segment, heapMb: [...segment.heapMb], findings: [...segment.findings] });
    return;
  }
  for (const key of ['inputs', 'accepted', 'rejected', 'crashes', 'hangs', 'seconds'] as const) total[key] += segment[key];
  total.slowestMs = Math.max(total.slowestMs, segment.slowestMs);
  total.maxRssMb = Math.max(total.maxRssMb, segment.maxRssMb);
  total.heapMb.push(...segment.heapMb);
  total.findings.push(...segment.findings);
}
