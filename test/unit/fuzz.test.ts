// A short slice of bench/fuzz.ts: every fuzz target (test/helpers/fuzz/) gets
// 2000 inputs in-process (a quarter for the two that verify a
// certificate per input), and the DNS server's real sockets a few
// hundred; any crash (an exception other than the target's clean refusal, or
// a malformed result) or any input over the hang limit fails the test, naming
// the input by (target, seed, index) so `node bench/fuzz.ts` can replay it.
// The seed changes with the day, so the suite explores new inputs over time
// while a failure stays reproducible from the message.
import test from 'ava';
import { allTargets } from '../helpers/fuzz/targets.ts';
import { checkSeeds, runTarget } from '../helpers/fuzz/run.ts';
import { fuzzDnsSockets } from '../helpers/fuzz/dns-socket.ts';

const INPUTS = Number(process.env['WEFT_FUZZ_INPUTS'] ?? 2000);
/** Targets that verify a certificate per input (~1-2 ms) get fewer, to keep the slice to seconds. */
const SLOW = new Set(['admission.reply', 'cert.node']);
const SEED = Number(process.env['WEFT_FUZZ_SEED'] ?? Math.floor(Date.now() / 86_400_000));
const targets = await allTargets();

for (const target of targets) {
  const inputs = SLOW.has(target.name) ? Math.ceil(INPUTS / 4) : INPUTS;
  test(`fuzz ${target.name}: ${inputs} inputs, no crash or hang (refuses with ${target.rejects})`, async (t) => {
    await checkSeeds(target);
    // Generous on a shared machine: the benchmark reports the real slowest input.
    const stats = await runTarget(target, { inputs, seed: SEED, hangMs: 3_000, sampleHeap: false });
    const report = stats.findings.map((f) => `seed ${SEED} index ${f.index} ${f.kind}: ${f.message} [${f.input.slice(0, 80)}]`).join('\n');
    t.is(stats.crashes, 0, report);
    t.is(stats.hangs, 0, report);
    t.is(stats.inputs, inputs);
  });
}

test('fuzz dns.sockets: the real server under fuzzed UDP and TCP keeps answering', async (t) => {
  const udp = targets.find((x) => x.name === 'dns.query')!;
  const tcp = targets.find((x) => x.name === 'dns.tcp-stream')!;
  const stats = await fuzzDnsSockets(udp, tcp, 400, SEED);
  t.is(stats.crashes + stats.hangs, 0, stats.findings.map((f) => `${f.kind}: ${f.message}`).join('\n'));
});
