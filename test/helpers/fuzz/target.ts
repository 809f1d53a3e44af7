// What a fuzz target is, and how its inputs are made. A target wraps one
// entry point that takes bytes from outside, exactly as the agent calls it,
// and says what a clean refusal looks like (the parser's documented error
// type). Anything else thrown, a result that breaks the target's own
// invariant (`OracleError`), an input that takes over a second, or the
// process dying is a finding.
import { Random } from './random.ts';
import { mutateBytes, mutateProtobuf, randomBytes, truncate, concat, MAX_INPUT_BYTES } from './mutate.ts';

export interface FuzzTarget {
  name: string;
  /** Which of the agent's boundaries this is: wire, dns, api, config. */
  group: string;
  /** The documented clean refusal, for the report. */
  rejects: string;
  /** Valid inputs made with the project's own encoders; every one must be accepted. */
  seeds: Uint8Array[];
  /** Structure-aware mutation of one seed; protobuf fields by default. */
  mutate?: (seed: Uint8Array, random: Random) => Uint8Array;
  /** Largest random input (bytes). */
  maxRandom?: number;
  run(input: Uint8Array): unknown;
  isClean(error: unknown): boolean;
  close?(): Promise<void> | void;
}

/** A result that breaks what the entry point promises (a malformed DNS reply, say). */
export class OracleError extends Error {
  override name = 'OracleError';
}

/** Input `index` of a run: mostly valid frames with one thing changed, some noise. */
export function makeInput(target: FuzzTarget, seed: number, index: number): Uint8Array {
  const random = Random.forInput(seed, index);
  try {
    return generate(target, random);
  } catch {
    // A structured mutator that cannot handle its own output (JSON nested too deep to
    // re-serialise, say) is the harness's problem, not the target's: plain noise instead.
    return mutateBytes(random.pick(target.seeds), random);
  }
}

function generate(target: FuzzTarget, random: Random): Uint8Array {
  const base = random.pick(target.seeds);
  const r = random.int(100);
  if (r < 50) {
    // Mostly one field; sometimes two or three, for checks that relate fields (a run inside its ring).
    const mutate = target.mutate ?? mutateProtobuf;
    let out = mutate(base, random);
    for (let extra = random.chance(0.3) ? 1 + random.int(2) : 0; extra > 0 && out.length < MAX_INPUT_BYTES; extra--) out = mutate(out, random);
    return out;
  }
  if (r < 70) return mutateBytes(base, random);
  if (r < 80) return truncate(base, random);
  if (r < 88) {
    const other = random.pick(target.seeds);
    return concat(base.subarray(0, random.int(base.length + 1)), other.subarray(random.int(other.length + 1)));
  }
  if (r < 98) return randomBytes(random, target.maxRandom ?? 1024);
  return base;
}
