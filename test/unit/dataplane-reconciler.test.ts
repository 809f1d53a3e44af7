// The reconciler against a fake kernel that behaves like iproute2 as observed
// (docs/dataplane.md): `bridge -force -batch` goes on after a failed line and
// names it; `ip -batch` exits on the first failed neighbour command without
// naming it. Lets us count spawns and inject failures that a real kernel would
// only produce under races.
import test from 'ava';
import type { Runner, RunResult } from '../../dataplane/exec.ts';
import type { FdbEntry, NeighbourEntry } from '../../dataplane/diff.ts';
import { dataplaneContext } from '../../dataplane/context.ts';
import { reconcile } from '../../dataplane/reconciler.ts';
import { KnownEntries } from '../../dataplane/known-entries.ts';
import { macFromIp } from '../../dataplane/mac.ts';

interface Call {
  file: string;
  args: readonly string[];
  lines: string[];
}

class FakeKernel {
  readonly fdb = new Map<string, Map<string, FdbEntry>>();
  readonly neigh = new Map<string, Map<string, NeighbourEntry>>();
  readonly calls: Call[] = [];
  /** Lines that fail (always, or the given number of times). */
  readonly failing = new Map<string, number>();
  /** Runs just before the next batch: a concurrent change between read and apply. */
  beforeBatch: (() => void) | undefined;

  addNamespace(ns: string): void {
    this.fdb.set(ns, new Map());
    this.neigh.set(ns, new Map());
  }

  readonly runner: Runner = async (file, args, input) => {
    const lines = input === undefined ? [] : input.split('\n').filter((l) => l !== '');
    this.calls.push({ file, args, lines });
    const ns = args[0] === '-n' ? args[1]! : '';
    const fdb = this.fdb.get(ns);
    const neigh = this.neigh.get(ns);
    if (!fdb || !neigh) return { exitCode: 1, stdout: '', stderr: `Cannot open network namespace "${ns}": No such file or directory` };
    const rest = args.slice(2).join(' ');
    if (file === 'bridge' && rest === '-j fdb show dev vxlan0') {
      // The kernel's own entries come along in the dump and must be left alone.
      const own = [{ mac: '2a:d4:70:95:0f:cc', flags: [], master: 'br0', state: 'permanent' }, { mac: '02:42:64:40:00:63', flags: [], master: 'br0', state: '' }];
      const ours = [...fdb.values()].map((e) => ({ mac: e.mac, dst: e.vtep, flags: ['self'], state: e.permanent ? 'permanent' : 'static' }));
      return ok(JSON.stringify([...own, ...ours]));
    }
    if (file === 'ip' && rest === '-4 -j neigh show dev vxlan0') {
      return ok(JSON.stringify([...neigh.values()].map((e) => ({ dst: e.ip, lladdr: e.mac, state: [e.permanent ? 'PERMANENT' : 'STALE'] }))));
    }
    if (rest === '-force -batch -') {
      this.beforeBatch?.();
      this.beforeBatch = undefined;
      return file === 'bridge' ? this.#bridgeBatch(fdb, lines) : this.#ipBatch(neigh, lines);
    }
    return { exitCode: 1, stdout: '', stderr: `fake kernel: unexpected ${file} ${args.join(' ')}` };
  };

  #fails(line: string): boolean {
    const left = this.failing.get(line);
    if (left === undefined || left === 0) return false;
    this.failing.set(line, left - 1);
    return true;
  }

  #bridgeBatch(fdb: Map<string, FdbEntry>, lines: string[]): RunResult {
    const errors: string[] = [];
    lines.forEach((line, i) => {
      const replace = /^fdb replace (\S+) dev vxlan0 dst (\S+) self permanent$/.exec(line);
      const del = /^fdb del (\S+) dev vxlan0 self$/.exec(line);
      if (this.#fails(line) || (del && !fdb.has(del[1]!)) || (!replace && !del)) {
        errors.push('RTNETLINK answers: No such file or directory', `Command failed -:${i + 1}`);
      } else if (replace) fdb.set(replace[1]!, { mac: replace[1]!, vtep: replace[2]!, permanent: true, overrides: false });
      else if (del) fdb.delete(del[1]!);
    });
    return { exitCode: errors.length > 0 ? 1 : 0, stdout: '', stderr: errors.join('\n') };
  }

  #ipBatch(neigh: Map<string, NeighbourEntry>, lines: string[]): RunResult {
    for (const line of lines) {
      const replace = /^neigh replace (\S+) lladdr (\S+) dev vxlan0 nud permanent$/.exec(line);
      const del = /^neigh del (\S+) dev vxlan0$/.exec(line);
      // ip neigh exits the whole batch on its first error, without a line number.
      if (this.#fails(line) || (del && !neigh.has(del[1]!)) || (!replace && !del)) return { exitCode: 2, stdout: '', stderr: 'RTNETLINK answers: No such file or directory' };
      if (replace) neigh.set(replace[1]!, { ip: replace[1]!, mac: replace[2]!, permanent: true });
      else if (del) neigh.delete(del[1]!);
    }
    return { exitCode: 0, stdout: '', stderr: '' };
  }

  batches(): Call[] {
    return this.calls.filter((c) => c.args.includes('-batch'));
  }
}

function ok(stdout: string): RunResult {
  return { exitCode: 0, stdout, stderr: '' };
}

const endpoint = (ip: string, vtep = '198.18.0.2') => ({ ip, mac: macFromIp(ip), vtep });
const endpoints = (n: number) => Array.from({ length: n }, (_, i) => endpoint(`100.64.${Math.floor(i / 250)}.${(i % 250) + 2}`));

function setup() {
  const kernel = new FakeKernel();
  kernel.addNamespace('t-n10');
  kernel.addNamespace('t-n11');
  return { kernel, ctx: dataplaneContext({ nsPrefix: 't', runner: kernel.runner }) };
}

function kernelMatches(kernel: FakeKernel, ns: string, want: ReadonlyArray<{ ip: string; mac: string; vtep: string }>): boolean {
  const fdb = kernel.fdb.get(ns)!;
  const neigh = kernel.neigh.get(ns)!;
  return fdb.size === want.length && neigh.size === want.length
    && want.every((e) => fdb.get(e.mac)?.vtep === e.vtep && fdb.get(e.mac)?.permanent === true && neigh.get(e.ip)?.mac === e.mac && neigh.get(e.ip)?.permanent === true);
}

test('from empty: one read and one batch per entry group, everything added', async (t) => {
  const { kernel, ctx } = setup();
  const want = endpoints(300);
  const result = await reconcile(ctx, [{ vni: 10, endpoints: want }]);
  t.deepEqual({ added: result.added, removed: result.removed, replaced: result.replaced }, { added: 600, removed: 0, replaced: 0 });
  t.deepEqual(result.errors, []);
  t.is(kernel.calls.length, 4);
  t.is(kernel.batches().length, 2);
  t.true(kernelMatches(kernel, 't-n10', want));
});

test('an already-correct state changes nothing and spawns no batch', async (t) => {
  const { kernel, ctx } = setup();
  const want = endpoints(50);
  await reconcile(ctx, [{ vni: 10, endpoints: want }]);
  kernel.calls.length = 0;
  const again = await reconcile(ctx, [{ vni: 10, endpoints: want }]);
  t.deepEqual({ added: again.added, removed: again.removed, replaced: again.replaced }, { added: 0, removed: 0, replaced: 0 });
  t.is(kernel.batches().length, 0);
});

test('stale entries are removed, wrong ones replaced, missing ones added', async (t) => {
  const { kernel, ctx } = setup();
  const want = endpoints(3);
  await reconcile(ctx, [{ vni: 10, endpoints: want }]);
  const fdb = kernel.fdb.get('t-n10')!;
  const neigh = kernel.neigh.get('t-n10')!;
  fdb.delete(want[0]!.mac); // deleted by hand
  fdb.set(want[1]!.mac, { mac: want[1]!.mac, vtep: '198.18.0.9', permanent: true, overrides: false }); // wrong VTEP
  fdb.set('02:42:64:40:09:09', { mac: '02:42:64:40:09:09', vtep: '198.18.0.2', permanent: true, overrides: false }); // stale
  neigh.set(want[2]!.ip, { ip: want[2]!.ip, mac: want[2]!.mac, permanent: false }); // not permanent
  const result = await reconcile(ctx, [{ vni: 10, endpoints: want }]);
  t.deepEqual(result.networks[0]!.fdb, { added: 1, removed: 1, replaced: 1 });
  t.deepEqual(result.networks[0]!.neighbours, { added: 0, removed: 0, replaced: 1 });
  t.true(kernelMatches(kernel, 't-n10', want));
});

test('a change-driven run diffs against what the last run left: no read, only the batches, and the kernel is right', async (t) => {
  const { kernel, ctx } = setup();
  const known = new KnownEntries();
  const want = endpoints(5);
  await reconcile(ctx, [{ vni: 10, endpoints: want }], { known, fromKnown: true });
  t.is(kernel.calls.length, 4, 'nothing known yet: the first run reads');
  kernel.calls.length = 0;
  // Endpoint 0 leaves, endpoint 1 moves to another host, a new one comes.
  const changed = [...want.slice(2), { ...want[1]!, vtep: '198.18.0.7' }, endpoint('100.64.9.9')];
  const result = await reconcile(ctx, [{ vni: 10, endpoints: changed }], { known, fromKnown: true });
  t.true(result.networks[0]!.fromKnown);
  t.deepEqual(kernel.calls.map((c) => c.args.includes('-batch')), [true, true], 'two batches, no read');
  t.deepEqual(result.networks[0]!.fdb, { added: 1, removed: 1, replaced: 1 });
  t.deepEqual(result.errors, []);
  t.true(kernelMatches(kernel, 't-n10', changed));
  kernel.calls.length = 0;
  const again = await reconcile(ctx, [{ vni: 10, endpoints: changed }], { known, fromKnown: true });
  t.is(kernel.calls.length, 0, 'nothing to change, nothing spawned');
  t.is(again.added + again.removed + again.replaced, 0);
});

test('known entries that are wrong cost a re-read, not a wrong kernel; drift by hand waits for a run that reads', async (t) => {
  const { kernel, ctx } = setup();
  const known = new KnownEntries();
  const want = endpoints(4);
  await reconcile(ctx, [{ vni: 10, endpoints: want }], { known });
  // By hand: endpoint 0's FDB entry is deleted, a stranger's is added. The known entries do not see it.
  kernel.fdb.get('t-n10')!.delete(want[0]!.mac);
  kernel.fdb.get('t-n10')!.set('02:42:64:40:09:09', { mac: '02:42:64:40:09:09', vtep: '198.18.0.2', permanent: true, overrides: false });
  // Desired drops endpoint 0: its delete fails in the kernel, the group re-reads and applies the real difference.
  const dropped = await reconcile(ctx, [{ vni: 10, endpoints: want.slice(1) }], { known, fromKnown: true });
  t.is(dropped.networks[0]!.retries, 1);
  t.deepEqual(dropped.errors, []);
  t.true(kernelMatches(kernel, 't-n10', want.slice(1)), 'the re-read also removed the stranger');
  // Drift that no diff touches stays until a run reads the kernel.
  kernel.neigh.get('t-n10')!.delete(want[1]!.ip);
  await reconcile(ctx, [{ vni: 10, endpoints: want.slice(1) }], { known, fromKnown: true });
  t.false(kernelMatches(kernel, 't-n10', want.slice(1)));
  const repair = await reconcile(ctx, [{ vni: 10, endpoints: want.slice(1) }], { known });
  t.false(repair.networks[0]!.fromKnown);
  t.true(kernelMatches(kernel, 't-n10', want.slice(1)));
});

test('a network whose run failed is forgotten: the next run reads the kernel', async (t) => {
  const { kernel, ctx } = setup();
  const known = new KnownEntries();
  const want = endpoints(3);
  await reconcile(ctx, [{ vni: 10, endpoints: want }], { known });
  t.truthy(known.get('t-n10'));
  const extra = endpoint('100.64.9.9');
  kernel.failing.set(`fdb replace ${extra.mac} dev vxlan0 dst ${extra.vtep} self permanent`, 2);
  const failed = await reconcile(ctx, [{ vni: 10, endpoints: [...want, extra] }], { known, fromKnown: true });
  t.is(failed.errors.length, 1);
  t.is(known.get('t-n10'), undefined);
  kernel.calls.length = 0;
  const next = await reconcile(ctx, [{ vni: 10, endpoints: [...want, extra] }], { known, fromKnown: true });
  t.false(next.networks[0]!.fromKnown);
  t.is(kernel.calls.filter((c) => !c.args.includes('-batch')).length, 2, 'both groups read');
  t.true(kernelMatches(kernel, 't-n10', [...want, extra]));
});

test('a batch that fails because the kernel changed under it is re-read and retried once', async (t) => {
  const { kernel, ctx } = setup();
  const want = endpoints(5);
  await reconcile(ctx, [{ vni: 10, endpoints: want }]);
  // Desired now drops endpoint 0; someone else deletes its entries between our read and our batch.
  kernel.beforeBatch = () => kernel.fdb.get('t-n10')!.delete(want[0]!.mac);
  const result = await reconcile(ctx, [{ vni: 10, endpoints: want.slice(1) }]);
  t.is(result.networks[0]!.retries, 1);
  t.deepEqual(result.errors, []);
  t.true(kernelMatches(kernel, 't-n10', want.slice(1)));
});

test('ip neigh stopping at its first error loses the rest of the batch; the retry completes it', async (t) => {
  const { kernel, ctx } = setup();
  const want = endpoints(4);
  kernel.failing.set(`neigh replace ${want[1]!.ip} lladdr ${want[1]!.mac} dev vxlan0 nud permanent`, 1);
  const result = await reconcile(ctx, [{ vni: 10, endpoints: want }]);
  t.is(result.networks[0]!.retries, 1);
  t.deepEqual(result.errors, []);
  t.true(kernelMatches(kernel, 't-n10', want));
  // The retry carried only what was still missing: entries 1..3.
  const neighBatches = kernel.batches().filter((c) => c.file === 'ip');
  t.is(neighBatches.length, 2);
  t.is(neighBatches[1]!.lines.length, 3);
});

test('a line that keeps failing is reported with the line; other networks are still reconciled', async (t) => {
  const { kernel, ctx } = setup();
  const want = endpoints(3);
  const bad = `fdb replace ${want[2]!.mac} dev vxlan0 dst 198.18.0.2 self permanent`;
  kernel.failing.set(bad, 99);
  const other = want.map((e) => ({ ...e, vtep: '198.18.0.3' }));
  const result = await reconcile(ctx, [{ vni: 10, endpoints: want }, { vni: 11, endpoints: other }]);
  t.is(result.errors.length, 1);
  t.regex(result.errors[0]!, /VNI 10/);
  t.true(result.errors[0]!.includes(bad));
  t.is(result.networks[0]!.retries, 1);
  t.true(kernelMatches(kernel, 't-n11', other));
  // The other FDB entries of network 10 went in (-force), and its neighbours too.
  t.is(kernel.fdb.get('t-n10')!.size, 2);
  t.is(kernel.neigh.get('t-n10')!.size, 3);
});

test('a missing network namespace or contradictory input fails that network only, with a hint', async (t) => {
  const { kernel, ctx } = setup();
  const result = await reconcile(ctx, [
    { vni: 12, endpoints: endpoints(1) },
    { vni: 11, endpoints: [endpoint('100.64.0.5'), { ...endpoint('100.64.0.5'), mac: '02:42:64:40:00:99' }] },
    { vni: 10, endpoints: endpoints(2) },
  ]);
  t.is(result.errors.length, 2);
  t.regex(result.errors[0]!, /t-n12 does not exist; ensureNetwork\(\) must run before reconcile/);
  t.regex(result.errors[1]!, /contradictory remote endpoints/);
  t.true(kernelMatches(kernel, 't-n10', endpoints(2)));
  t.is(kernel.fdb.get('t-n11')!.size, 0);
});

test('an empty endpoint list removes every entry the reconciler owns and only those', async (t) => {
  const { kernel, ctx } = setup();
  await reconcile(ctx, [{ vni: 10, endpoints: endpoints(7) }]);
  const result = await reconcile(ctx, [{ vni: 10, endpoints: [] }]);
  t.deepEqual({ added: result.added, removed: result.removed, replaced: result.replaced }, { added: 0, removed: 14, replaced: 0 });
  t.is(kernel.fdb.get('t-n10')!.size, 0);
  // Kernel-owned entries in the dump (bridge port MACs) were never deleted.
  t.false(kernel.batches().some((c) => c.lines.some((l) => l.includes('2a:d4:70:95:0f:cc') || l.includes('02:42:64:40:00:63'))));
});
