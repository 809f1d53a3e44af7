// Runs a fuzz target over reproducible inputs and counts what happened:
// accepted, cleanly refused, crashed (any other exception, or an oracle
// failure), slow (over the hang limit, default 1 s, twice in a row). Memory is sampled as the
// run goes: process RSS, and the JS heap after a full GC at each quarter of
// the run, so that a heap that keeps growing shows up as a rising series.
import v8 from 'node:v8';
import vm from 'node:vm';
import { makeInput, type FuzzTarget } from './target.ts';

v8.setFlagsFromString('--expose-gc');
const collect = vm.runInNewContext('gc') as () => void;

export const HANG_MS = 1_000;

export interface Finding {
  index: number;
  kind: 'crash' | 'hang';
  message: string;
  /** The input, hex (first 512 bytes). */
  input: string;
  bytes: number;
  ms: number;
}

export interface TargetStats {
  target: string;
  group: string;
  rejects: string;
  inputs: number;
  accepted: number;
  rejected: number;
  crashes: number;
  hangs: number;
  slowestMs: number;
  seconds: number;
  maxRssMb: number;
  /** Heap used (MB) after a full GC: at the start and after each quarter of the run. */
  heapMb: number[];
  findings: Finding[];
}

export interface RunOptions {
  inputs: number;
  seed: number;
  /** First input index (a supervisor resumes after an input that killed the worker). */
  start?: number;
  hangMs?: number;
  /** Called before each input runs (a supervisor keeps the last one for post-mortem). */
  onInput?: (index: number, input: Uint8Array) => void;
  /** Called every 5000 inputs with the counts so far (a supervisor keeps them if the worker dies). */
  onProgress?: (stats: TargetStats) => void;
  keepFindings?: number;
  /** Full GCs to sample the heap (5 per run); off for the test slice, where they cost more than the inputs. */
  sampleHeap?: boolean;
}

const mb = (bytes: number): number => Math.round((bytes / 1024 / 1024) * 10) / 10;

function heapAfterGc(): number {
  collect();
  return mb(process.memoryUsage().heapUsed);
}

export function describe(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`.slice(0, 400);
  return `non-Error thrown: ${String(error)}`.slice(0, 400);
}

export function hex(input: Uint8Array): string {
  return Buffer.from(input.subarray(0, 512)).toString('hex');
}

/** Runs one input: 'accepted' | 'rejected', or a crash message. */
export async function runOne(target: FuzzTarget, input: Uint8Array): Promise<{ outcome: 'accepted' | 'rejected' } | { outcome: 'crash'; message: string }> {
  try {
    const result = target.run(input);
    if (result instanceof Promise) await result;
    return { outcome: 'accepted' };
  } catch (error) {
    return target.isClean(error) ? { outcome: 'rejected' } : { outcome: 'crash', message: describe(error) };
  }
}

export async function runTarget(target: FuzzTarget, options: RunOptions): Promise<TargetStats> {
  const hangMs = options.hangMs ?? HANG_MS;
  const keep = options.keepFindings ?? 5;
  const start = options.start ?? 0;
  const end = start + options.inputs;
  const stats: TargetStats = {
    target: target.name, group: target.group, rejects: target.rejects, inputs: 0, accepted: 0, rejected: 0, crashes: 0, hangs: 0,
    slowestMs: 0, seconds: 0, maxRssMb: mb(process.memoryUsage().rss), heapMb: [], findings: [],
  };
  const sampleHeap = options.sampleHeap ?? true;
  if (sampleHeap) stats.heapMb.push(heapAfterGc());
  const quarter = Math.max(1, Math.ceil(options.inputs / 4));
  const began = performance.now();
  for (let index = start; index < end; index++) {
    const input = makeInput(target, options.seed, index);
    options.onInput?.(index, input);
    const t0 = performance.now();
    const result = await runOne(target, input);
    const ms = performance.now() - t0;
    stats.inputs++;
    stats.slowestMs = Math.max(stats.slowestMs, ms);
    if (result.outcome === 'crash') {
      stats.crashes++;
      if (stats.findings.length < keep) stats.findings.push({ index, kind: 'crash', message: result.message, input: hex(input), bytes: input.length, ms });
    } else stats[result.outcome]++;
    if (ms > hangMs) {
      // A machine too busy to run this process for a while (other processes on the cores) makes
      // any input slow once; an input that is itself slow is slow again.
      const t1 = performance.now();
      await runOne(target, input);
      const again = performance.now() - t1;
      if (again > hangMs) {
        stats.hangs++;
        if (stats.findings.length < keep) stats.findings.push({ index, kind: 'hang', message: `took ${ms.toFixed(0)} ms, then ${again.toFixed(0)} ms again`, input: hex(input), bytes: input.length, ms });
      }
    }
    if ((index - start) % 1000 === 0) stats.maxRssMb = Math.max(stats.maxRssMb, mb(process.memoryUsage().rss));
    if ((index - start + 1) % 5000 === 0) options.onProgress?.({ ...stats, seconds: (performance.now() - began) / 1000, heapMb: [...stats.heapMb], findings: [...stats.findings] });
    if (sampleHeap && (index - start + 1) % quarter === 0 && index + 1 < end) stats.heapMb.push(heapAfterGc());
  }
  if (sampleHeap) stats.heapMb.push(heapAfterGc());
  stats.maxRssMb = Math.max(stats.maxRssMb, mb(process.memoryUsage().rss));
  stats.seconds = Math.round((performance.now() - began) / 100) / 10;
  return stats;
}

/** Every seed must be accepted: a harness whose seeds are refused only fuzzes the first check. */
export async function checkSeeds(target: FuzzTarget): Promise<void> {
  for (const [i, seed] of target.seeds.entries()) {
    try {
      const result = target.run(seed);
      if (result instanceof Promise) await result;
    } catch (error) {
      throw new Error(`${target.name}: seed ${i} is refused (${describe(error)})`);
    }
  }
}

/**
 * Shrinks a crashing input while it still fails the same way (same message
 * up to the first digit): the smallest input goes into the regression test.
 */
export async function minimize(target: FuzzTarget, input: Uint8Array): Promise<Uint8Array> {
  const first = await runOne(target, input);
  if (first.outcome !== 'crash') return input;
  const signature = first.message.replace(/\d.*$/s, '');
  const fails = async (candidate: Uint8Array): Promise<boolean> => {
    const r = await runOne(target, candidate);
    return r.outcome === 'crash' && r.message.replace(/\d.*$/s, '') === signature;
  };
  let current = input;
  for (let chunk = Math.max(1, current.length >> 1); chunk >= 1; chunk >>= 1) {
    for (let at = 0; at < current.length; ) {
      const candidate = new Uint8Array([...current.subarray(0, at), ...current.subarray(at + chunk)]);
      if (candidate.length < current.length && (await fails(candidate))) current = candidate;
      else at += chunk;
    }
  }
  return current;
}
