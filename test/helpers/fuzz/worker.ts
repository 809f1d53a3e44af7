// The fuzz worker thread: runs the targets it is given, one after another,
// and reports each one's counts to the supervisor (supervisor.ts). Before
// every input it bumps a shared counter and stores the input's index, so the
// supervisor can tell an input that never returns (a hang) or kills the
// thread (out of memory, a native crash) and name it by (target, seed, index).
import { parentPort, workerData } from 'node:worker_threads';
import { allTargets } from './targets.ts';
import { checkSeeds, runTarget, type TargetStats } from './run.ts';

export interface WorkerJob {
  target: string;
  inputs: number;
  start: number;
}

export interface WorkerInput {
  jobs: WorkerJob[];
  seed: number;
  /** Int32: [0] inputs started, [1] index of the current input, [2] position of the current job. */
  progress: SharedArrayBuffer;
}

export type WorkerMessage =
  | { type: 'partial'; job: number; stats: TargetStats }
  | { type: 'done'; job: number; stats: TargetStats }
  | { type: 'seed-error'; job: number; message: string };

const { jobs, seed, progress } = workerData as WorkerInput;
const shared = new Int32Array(progress);
const targets = new Map((await allTargets()).map((t) => [t.name, t]));

for (const [position, job] of jobs.entries()) {
  const target = targets.get(job.target);
  if (!target) throw new Error(`no fuzz target ${job.target}`);
  Atomics.store(shared, 2, position);
  try {
    await checkSeeds(target);
  } catch (error) {
    parentPort!.postMessage({ type: 'seed-error', job: position, message: (error as Error).message } satisfies WorkerMessage);
    continue;
  }
  const stats = await runTarget(target, {
    inputs: job.inputs,
    start: job.start,
    seed,
    onInput: (index) => {
      Atomics.store(shared, 1, index);
      Atomics.add(shared, 0, 1);
    },
    onProgress: (partial) => parentPort!.postMessage({ type: 'partial', job: position, stats: partial } satisfies WorkerMessage),
  });
  parentPort!.postMessage({ type: 'done', job: position, stats } satisfies WorkerMessage);
}
for (const target of targets.values()) await target.close?.();
