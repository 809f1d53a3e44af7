// The allocation codec on hostile bytes: inputs the fuzzer (bench/fuzz.ts)
// found, minimized. A saved space state lists allocated values as [start, end)
// runs, expanded on load: 23 bytes must not expand into billions of values.
import test from 'ava';
import { decodeSpaceState, encodeSpaceState } from '../../agent/wire/allocation-codec.ts';
import { FrameError } from '../../agent/wire/checked-decode.ts';

test('a state file whose runs cover 2^32 values is refused before anything is expanded (fuzz: alloc.state-file)', (t) => {
  // ring vni [0, 2^32) with no tokens, allocatedRuns [0, 2^32): was ~3 s of CPU, gigabytes, then a RangeError.
  const evil = Buffer.from('0a0d0a03766e6910001880808080101206008080808010', 'hex');
  const started = performance.now();
  t.throws(() => decodeSpaceState(evil, 'saved allocation state vni'), { instanceOf: FrameError, message: /cover .* values/ });
  t.true(performance.now() - started < 500, 'refused without expanding');
});

test('a real state still round-trips, runs and all', (t) => {
  const ring = { space: 'vni', start: 1, end: 16_777_216, tokens: [{ start: 1, owner: 'a1'.repeat(16), version: 2, free: 16_777_210 }] };
  const allocated = [1, 2, 3, 4097, 16_777_215];
  t.deepEqual(decodeSpaceState(encodeSpaceState({ ring, allocated }), 'x'), { ring, allocated });
});
