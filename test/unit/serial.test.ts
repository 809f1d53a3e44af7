// lib/serial.ts: the one queue the data plane, the allocator, the overlay and
// the agent use for "one operation at a time". Ordering and failure are driven
// by promises the test settles itself, never by timing.
import test from 'ava';
import { KeyedSerializer, Serializer } from '../../lib/serial.ts';

/** A task that records its start and finish and ends when the test says so. */
function gate(log: string[], name: string) {
  const { promise, resolve, reject } = Promise.withResolvers<string>();
  const task = async (): Promise<string> => {
    log.push(`start ${name}`);
    try {
      return await promise;
    } finally {
      log.push(`end ${name}`);
    }
  };
  return { task, open: () => resolve(name), fail: (message: string) => reject(new Error(message)) };
}

/** Lets every queued reaction run. */
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

test('one key: tasks run one at a time, in call order, whatever order they finish in', async (t) => {
  const log: string[] = [];
  const queue = new KeyedSerializer();
  const a = gate(log, 'a');
  const b = gate(log, 'b');
  const c = gate(log, 'c');
  const results = [queue.run('k', a.task), queue.run('k', b.task), queue.run('k', c.task)];
  await settle();
  t.deepEqual(log, ['start a'], 'b and c wait for a');
  c.open();
  b.open();
  await settle();
  t.deepEqual(log, ['start a'], 'opening later tasks does not let them jump the queue');
  a.open();
  t.deepEqual(await Promise.all(results), ['a', 'b', 'c']);
  t.deepEqual(log, ['start a', 'end a', 'start b', 'end b', 'start c', 'end c']);
});

test('a failure rejects its own caller only: the next task still runs', async (t) => {
  const log: string[] = [];
  const queue = new KeyedSerializer();
  const a = gate(log, 'a');
  const failing = queue.run('k', a.task);
  const throwing = queue.run('k', () => {
    throw new Error('thrown before any await');
  });
  const after = queue.run('k', async () => 'after');
  const checks = [t.throwsAsync(failing, { message: 'a broke' }), t.throwsAsync(throwing, { message: 'thrown before any await' })];
  a.fail('a broke');
  await Promise.all(checks);
  t.is(await after, 'after');
});

test('different keys do not wait for each other', async (t) => {
  const log: string[] = [];
  const queue = new KeyedSerializer();
  const a = gate(log, 'a');
  const blocked = queue.run('one', a.task);
  t.is(await queue.run('two', async () => 'two'), 'two', 'key "two" ran while key "one" was busy');
  a.open();
  t.is(await blocked, 'a');
});

test('runAll waits for each key\'s earlier tasks and holds every key while its task runs', async (t) => {
  const log: string[] = [];
  const queue = new KeyedSerializer();
  const onX = gate(log, 'x');
  const onY = gate(log, 'y');
  const both = gate(log, 'both');
  const first = [queue.run('x', onX.task), queue.run('y', onY.task)];
  const all = queue.runAll(['y', 'x', 'y'], both.task);
  onY.open();
  await settle();
  t.false(log.includes('start both'), 'x is still busy');
  onX.open();
  await Promise.all(first);
  await settle();
  t.true(log.includes('start both'));
  // Keys are taken one by one in sorted order, so only a task queued once runAll's task runs is sure to wait.
  const later = [queue.run('x', async () => log.push('later x')), queue.run('y', async () => log.push('later y'))];
  await settle();
  t.is(log.at(-1), 'start both', 'later tasks on x and y wait for runAll');
  both.open();
  await Promise.all([all, ...later]);
  t.deepEqual(log.slice(-4, -2), ['start both', 'end both']);
  t.deepEqual(log.slice(-2).sort(), ['later x', 'later y'], 'both ran after it (keys are independent, so in either order)');
});

test('runAll callers naming the same keys in opposite orders do not deadlock', async (t) => {
  const queue = new KeyedSerializer();
  const results = await Promise.all([queue.runAll(['a', 'b'], async () => 1), queue.runAll(['b', 'a'], async () => 2), queue.run('a', async () => 3)]);
  t.deepEqual(results, [1, 2, 3]);
});

test('Serializer is one such queue', async (t) => {
  const log: string[] = [];
  const queue = new Serializer();
  const a = gate(log, 'a');
  const results = [queue.run(a.task), queue.run(async () => 'b')];
  await settle();
  t.deepEqual(log, ['start a']);
  a.open();
  t.deepEqual(await Promise.all(results), ['a', 'b']);
});
