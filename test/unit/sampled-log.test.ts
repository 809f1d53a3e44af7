// Sampled warnings (agent/util/sampled-log.ts): a burst in full, the rest
// summed up in one line per interval, nothing when nothing happened.
import test from 'ava';
import { Writable } from 'node:stream';
import pino from 'pino';
import { SampledLog } from '../../agent/util/sampled-log.ts';

function capture(): { lines: Array<Record<string, unknown>>; logger: pino.Logger } {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({ write(chunk: Buffer, _encoding, done) {
    lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
    done();
  } });
  return { lines, logger: pino({ level: 'info' }, stream) };
}

const DIALS = { message: 'could not reach a member; retrying every second', summary: 'failed dials', subjectField: 'node' };

test('the first events of an interval are logged in full, the rest in one summary line', async (t) => {
  const { lines, logger } = capture();
  const log = new SampledLog(logger, { burst: 2, intervalMs: 60_000 }, DIALS);
  for (let i = 0; i < 50; i++) log.event(`node${i % 3}`, i % 2 === 0 ? 'connect timeout' : 'refused');
  log.flush();
  await new Promise((resolve) => setImmediate(resolve));
  t.is(lines.length, 3);
  t.deepEqual(lines.slice(0, 2).map((l) => [l['msg'], l['node'], l['level']]), [[DIALS.message, 'node0', 40], [DIALS.message, 'node1', 40]]);
  const summary = lines[2]!;
  t.is(summary['msg'], '48 more failed dials in the last 60 s (not logged one by one)');
  t.is(summary['suppressed'], 48);
  t.is(summary['distinctSubjects'], 3);
  t.deepEqual(summary['reasons'], { 'connect timeout': 24, refused: 24 });
});

test('a quiet interval writes nothing, and a new interval starts a new burst', async (t) => {
  const { lines, logger } = capture();
  const log = new SampledLog(logger, { burst: 1, intervalMs: 60_000 }, DIALS);
  log.flush();
  log.event('a', 'x');
  log.flush();
  log.event('b', 'y');
  log.flush();
  await new Promise((resolve) => setImmediate(resolve));
  t.deepEqual(lines.map((l) => l['node']), ['a', 'b'], 'one full line per interval, no empty summaries');
});
