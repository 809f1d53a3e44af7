// The fuzz runner's hang verdict: an input is slow when it is slow twice in a
// row; a stall of the whole process (a busy machine) once is not the input's.
import test from 'ava';
import { runTarget } from '../helpers/fuzz/run.ts';
import type { FuzzTarget } from '../helpers/fuzz/target.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function target(name: string, slowCalls: (call: number) => boolean): FuzzTarget {
  let calls = 0;
  return {
    name, group: 'test', rejects: 'nothing', seeds: [Uint8Array.of(1, 2, 3)],
    mutate: (seed) => seed,
    run: async () => {
      if (slowCalls(calls++)) await sleep(150);
    },
    isClean: () => true,
  };
}

test('an input slow once (the machine stalled) is not a hang', async (t) => {
  const stats = await runTarget(target('stall', (call) => call === 3), { inputs: 10, seed: 1, hangMs: 100, sampleHeap: false });
  t.is(stats.hangs, 0);
  t.is(stats.inputs, 10);
});

test('an input slow every time is a hang, and recorded', async (t) => {
  const stats = await runTarget(target('slow', () => true), { inputs: 2, seed: 1, hangMs: 100, sampleHeap: false });
  t.is(stats.hangs, 2);
  t.regex(stats.findings[0]!.message, /took \d+ ms, then \d+ ms again/);
});
