// Random cluster histories for the allocation ring: allocations, frees,
// space requests, ring gossip only between reachable nodes, partitions and
// heals, joins, graceful leaves, crashes, removals (`weft node rm`, also of a
// node that is alive behind a partition) and reclaims run the way the agent
// runs them (controlplane/allocation/reclaim.ts: the active member with the
// smallest ID, after a ring sync answered by every other active member).
// Checked after every step: no value is held twice cluster-wide, no
// allocation relied on an unreachable owner, merges between honest nodes
// never conflict (reclaims included); and at the end, after freeing
// everything, the free space is exactly the full space.

import assert from 'node:assert/strict';
import test from 'ava';
import fc from 'fast-check';
import { Allocator, ReclaimRound, chooseReclaimer, goneOwners, ranges, spacesToReport, syncRefusal } from '../../controlplane/allocation/index.ts';
import type { AllocResult, RingState } from '../../controlplane/allocation/index.ts';

type Op =
  | { t: 'alloc'; n: number; keep: boolean }
  | { t: 'value'; n: number; v: number; keep: boolean }
  | { t: 'free'; n: number; pick: number }
  | { t: 'gossip'; a: number; b: number }
  | { t: 'partition'; groups: number[] }
  | { t: 'heal' }
  | { t: 'join' }
  | { t: 'leave'; n: number; to: number }
  | { t: 'crash'; n: number }
  | { t: 'remove'; n: number }
  | { t: 'reclaim' };

const idx = fc.nat({ max: 15 });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 10, arbitrary: fc.record({ t: fc.constant('alloc' as const), n: idx, keep: fc.boolean() }) },
  { weight: 4, arbitrary: fc.record({ t: fc.constant('value' as const), n: idx, v: fc.nat(), keep: fc.boolean() }) },
  { weight: 8, arbitrary: fc.record({ t: fc.constant('free' as const), n: idx, pick: fc.nat() }) },
  { weight: 8, arbitrary: fc.record({ t: fc.constant('gossip' as const), a: idx, b: idx }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('partition' as const), groups: fc.array(fc.nat({ max: 2 }), { minLength: 16, maxLength: 16 }) }) },
  { weight: 1, arbitrary: fc.constant({ t: 'heal' as const }) },
  { weight: 1, arbitrary: fc.constant({ t: 'join' as const }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('leave' as const), n: idx, to: idx }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('crash' as const), n: idx }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('remove' as const), n: idx }) },
  { weight: 2, arbitrary: fc.constant({ t: 'reclaim' as const }) },
);

interface Node {
  id: string;
  alloc: Allocator;
  /** Running and part of the cluster (a crashed node is not; a removed or left one never again). */
  alive: boolean;
  group: number;
  /** Roster status: a crashed node stays active until it is removed. */
  status: 'active' | 'left' | 'removed';
  /** The ring this node last gossiped: what the table holds of it once it is gone. */
  published: RingState;
}

/** A value some workload holds; `keep` marks cluster objects (a network's VNI) that outlive the node. */
interface Holding {
  keep: boolean;
}

class Cluster {
  readonly nodes: Node[] = [];
  /** Ground truth: every value handed out and not freed, cluster-wide. */
  readonly held = new Map<number, Holding>();
  /** Values of cluster objects whose owner crashed, waiting for a reclaim. */
  readonly orphaned = new Map<string, number[]>();
  readonly start: number;
  readonly end: number;
  stats = { allocated: 0, requests: 0, refusedUnreachable: 0, exhausted: 0, conflicts: 0, reclaimed: 0, reclaimBlocked: 0 };

  constructor(start: number, end: number) {
    this.start = start;
    this.end = end;
    const first = Allocator.init('n0', 'space', start, end);
    this.nodes.push({ id: 'n0', alloc: first, alive: true, group: 0, status: 'active', published: first.ring });
    for (let i = 1; i < 4; i++) this.join();
  }

  get alive(): Node[] {
    return this.nodes.filter((n) => n.alive);
  }

  pick(i: number): Node | undefined {
    const alive = this.alive;
    return alive[i % alive.length];
  }

  reachable(from: Node): string[] {
    return this.alive.filter((n) => n !== from && n.group === from.group).map((n) => n.id);
  }

  byId(id: string): Node {
    const node = this.nodes.find((n) => n.id === id);
    assert.ok(node !== undefined, `unknown node ${id}`);
    return node;
  }

  /** A joining node syncs with the member it joins through, as `weft join` does. */
  join(): void {
    const id = `n${this.nodes.length}`;
    const sponsor = this.alive.find((n) => n.alloc.ring.tokens.length > 0);
    const alloc = Allocator.join(id, 'space', this.start, this.end);
    const node: Node = { id, alloc, alive: true, group: sponsor?.group ?? 0, status: 'active', published: alloc.ring };
    this.nodes.push(node);
    if (sponsor !== undefined) this.gossip(sponsor, node);
  }

  gossip(from: Node, to: Node): void {
    if (from === to || !from.alive || !to.alive || from.group !== to.group) return;
    from.published = from.alloc.ring;
    this.mergeOk(to, from.alloc.ring);
  }

  mergeOk(node: Node, ring: RingState): void {
    const outcome = node.alloc.merge(ring);
    assert.ok(outcome.ok, `honest merge refused at ${node.id}: ${outcome.ok ? '' : outcome.explanations.join('; ')}`);
  }

  /** Runs an allocation, serving at most a few space requests through reachable owners. */
  allocate(node: Node, attempt: () => AllocResult, keep: boolean, value?: number): void {
    for (let round = 0; round < 4; round++) {
      const result = attempt();
      if (result.kind === 'allocated') return this.handedOut(node, result.value, keep, value);
      if (result.kind === 'failed') return this.checkFailure(node, result, value);
      this.stats.requests += 1;
      const owner = this.byId(result.request.to);
      assert.ok(this.reachable(node).includes(owner.id), `${node.id} asked unreachable ${owner.id}`);
      const reply = owner.alloc.handleSpaceRequest(result.request);
      if (reply.kind === 'refused' && reply.refusal.reason === 'in-use') assert.ok(this.held.has(value as number), `${owner.id} refused ${value} as in use, but nobody holds it`);
      const outcome = node.alloc.receiveReply(reply);
      assert.ok(outcome.ok, outcome.ok ? '' : outcome.explanations.join('; '));
      if (reply.kind === 'refused') return;
    }
  }

  handedOut(node: Node, v: number, keep: boolean, wanted: number | undefined): void {
    if (wanted !== undefined) assert.equal(v, wanted);
    assert.ok(v >= this.start && v < this.end, `${v} outside the space`);
    assert.ok(!this.held.has(v), `${v} handed out twice (second time by ${node.id})`);
    assert.equal(node.alloc.ownerOf(v), node.id, `${node.id} allocated ${v} outside its own ranges`);
    for (const other of this.alive) if (other !== node) assert.notEqual(other.alloc.ownerOf(v), other.id, `${other.id} also believes it owns ${v}`);
    this.held.set(v, { keep });
    this.stats.allocated += 1;
  }

  checkFailure(node: Node, result: Extract<AllocResult, { kind: 'failed' }>, wanted: number | undefined): void {
    const { code, owners } = result.error;
    if (code === 'unreachable') {
      this.stats.refusedUnreachable += 1;
      for (const owner of owners ?? []) assert.ok(!this.reachable(node).includes(owner), `${node.id} said ${owner} is unreachable but it is not`);
    } else if (code === 'in-use') {
      assert.ok(wanted !== undefined && this.held.has(wanted), `${wanted} reported in use but not held`);
    } else if (code === 'exhausted') {
      this.stats.exhausted += 1;
    } else {
      assert.ok(code === 'no-ring' || code === 'awaiting-handover', `unexpected failure ${code}: ${result.error.message}`);
    }
  }

  free(node: Node, pick: number): void {
    const values = [...this.held.keys()];
    if (values.length === 0) return;
    const v = values[pick % values.length] as number;
    const at = node;
    for (let hop = 0; hop < 3; hop++) {
      const result = at.alloc.free(v, this.reachable(at));
      if (result.kind === 'freed') return void this.held.delete(v);
      if (result.kind === 'failed') {
        assert.notEqual(result.error.code, 'not-allocated', `${at.id} owns held value ${v} but has no record of it`);
        return;
      }
      const owner = this.byId(result.request.to);
      assert.ok(this.reachable(at).includes(owner.id));
      const reply = owner.alloc.handleFreeRequest(result.request);
      if (reply.kind === 'freed') return void this.held.delete(v);
      assert.notEqual(reply.refusal.reason, 'not-allocated', `${owner.id} owns held value ${v} but has no record of it`);
      this.mergeOk(at, reply.refusal.ring);
    }
  }

  /**
   * Departures keep at least two live nodes and one other node that knows
   * the ring: losing every copy of the ring is losing the cluster, which no
   * allocator can survive.
   */
  mayDepart(node: Node): boolean {
    return this.alive.length > 2 && this.alive.some((n) => n !== node && n.alloc.ring.tokens.length > 0);
  }

  leave(node: Node, to: Node): void {
    if (node === to || !this.mayDepart(node) || !this.reachable(node).includes(to.id)) return;
    const donation = node.alloc.leave(to.id);
    node.alive = false;
    node.status = 'left';
    node.published = node.alloc.ring; // its last ring goes out with the handover
    if (donation === undefined) return;
    const outcome = to.alloc.receiveDonation(donation);
    assert.ok(outcome.ok, outcome.ok ? '' : outcome.explanations.join('; '));
  }

  crash(node: Node): void {
    if (!this.mayDepart(node)) return;
    node.alive = false;
    this.orphan(node);
  }

  /** Its workloads die with it; cluster objects (keep) survive and must be protected when its ranges are reclaimed. */
  orphan(node: Node): void {
    const kept: number[] = [];
    for (const v of node.alloc.allocated()) {
      if (this.held.get(v)?.keep) kept.push(v);
      else this.held.delete(v);
    }
    this.orphaned.set(node.id, kept);
  }

  get active(): Node[] {
    return this.nodes.filter((n) => n.status === 'active');
  }

  /**
   * `weft node rm`: of a crashed node, or of one that is alive, maybe behind
   * a partition. Either way it is out of the cluster from now on: every
   * member refuses its entries and requests, and its workloads with it.
   */
  remove(node: Node): void {
    if (node.status !== 'active' || this.active.length <= 2) return;
    if (node.alive && !this.mayDepart(node)) return;
    if (node.alive) this.orphan(node);
    node.alive = false;
    node.status = 'removed';
  }

  /** Full sync among live nodes: after it, every live node holds the same ring. */
  syncAll(): void {
    for (let round = 0; round < 2; round++) for (const a of this.alive) for (const b of this.alive) this.gossip(a, b);
  }

  heal(): void {
    for (const n of this.nodes) n.group = 0;
  }

  /**
   * The agent's reclaim (agent/allocation/reclaimer.ts): the active member
   * with the smallest ID asks every other active member for its rings; any
   * member crashed or behind a partition blocks it. Crashed but not removed
   * nodes are never reclaimed. Nothing else is synced: the reclaimed ranges
   * spread by gossip like any ring edit, across later partitions too.
   */
  reclaim(): void {
    const gone = new Set(this.nodes.filter((n) => n.status !== 'active').map((n) => n.id));
    if (gone.size === 0) return;
    const activeIds = new Set(this.active.map((n) => n.id));
    const reclaimer = this.byId(chooseReclaimer(activeIds) as string);
    if (!reclaimer.alive) return;
    const goneRings = this.nodes.filter((n) => gone.has(n.id)).map((n) => n.published);
    const members = this.active.filter((n) => n !== reclaimer);
    if (members.some((m) => !m.alive || m.group !== reclaimer.group)) {
      this.stats.reclaimBlocked += 1;
      return;
    }
    // Like the agent's tables: every value cluster objects still use. The
    // gone node may have held them in ranges the survivors never heard of;
    // values outside its ranges are ignored.
    const inUse = [...this.held].filter(([, h]) => h.keep).map(([v]) => v);
    const visible = [reclaimer.alloc.ring, ...goneRings].some((r) => goneOwners(r, gone).length > 0);
    let spaces = visible ? ['space'] : [];
    for (let round = 0; ; round++) {
      assert.ok(round < 3, 'reclaim rounds do not converge');
      const sync = new ReclaimRound(members.map((m) => m.id), gone, spaces);
      for (const member of members) {
        const request = sync.request(reclaimer.id, member.id);
        assert.equal(syncRefusal(request, { active: activeIds }), undefined, `${member.id} refused the reclaimer's sync`);
        const rings = spacesToReport(request, [member.alloc.ring, ...goneRings]);
        sync.record(member.id, { rings, inUse: rings.length > 0 ? [{ space: 'space', values: inUse }] : [] });
      }
      const outcome = sync.outcome();
      assert.notEqual(outcome.kind, 'incomplete');
      if (outcome.kind === 'widen') {
        spaces = outcome.spaces;
        continue;
      }
      if (outcome.kind !== 'complete') return;
      const answer = outcome.spaces.get('space');
      if (answer === undefined) return;
      for (const ring of [...answer.rings, ...goneRings]) this.mergeOk(reclaimer, ring);
      for (const owner of goneOwners(reclaimer.alloc.ring, gone)) this.stats.reclaimed += reclaimer.alloc.reclaim(owner, answer.inUse);
      // The gone nodes' cluster objects are the live owners' to protect now (check() holds them to that).
      for (const id of gone) this.orphaned.delete(id);
      return;
    }
  }

  /** Invariants that hold after every step. */
  check(): void {
    const seen = new Map<number, string>();
    for (const node of this.alive) {
      for (const v of node.alloc.allocated()) {
        assert.ok(!seen.has(v), `${v} allocated on both ${seen.get(v)} and ${node.id}`);
        seen.set(v, node.id);
        assert.ok(this.held.has(v), `${node.id} holds ${v} that nobody was given`);
      }
    }
    const orphaned = new Set([...this.orphaned.values()].flat());
    for (const v of this.held.keys()) assert.ok(seen.has(v) || orphaned.has(v), `held value ${v} is recorded by no live owner`);
  }

  apply(op: Op): void {
    switch (op.t) {
      case 'alloc': {
        const n = this.pick(op.n) as Node;
        return this.allocate(n, () => n.alloc.allocate(this.reachable(n)), op.keep);
      }
      case 'value': {
        const n = this.pick(op.n) as Node;
        const v = this.start + (op.v % (this.end - this.start));
        return this.allocate(n, () => n.alloc.allocateValue(v, this.reachable(n)), op.keep, v);
      }
      case 'free':
        return this.free(this.pick(op.n) as Node, op.pick);
      case 'gossip':
        return this.gossip(this.pick(op.a) as Node, this.pick(op.b) as Node);
      case 'partition':
        for (const [i, n] of this.nodes.entries()) n.group = op.groups[i % op.groups.length] ?? 0;
        return;
      case 'heal':
        return this.heal();
      case 'join':
        if (this.nodes.length < 12) this.join();
        return;
      case 'leave':
        return this.leave(this.pick(op.n) as Node, this.pick(op.to) as Node);
      case 'crash':
        return this.crash(this.pick(op.n) as Node);
      case 'remove':
        return this.remove(this.nodes[op.n % this.nodes.length] as Node);
      case 'reclaim':
        return this.reclaim();
    }
  }

  /** Heal, remove and reclaim the dead, free everything: the whole space must be free again. */
  drain(): void {
    this.heal();
    for (const node of this.active) if (!node.alive) node.status = 'removed';
    this.reclaim();
    // A gone node that kept no cluster object has nothing to protect: a reclaim that finds none of
    // its ranges (it never owned one) rightly does nothing for it.
    const unprotected = [...this.orphaned].filter(([, kept]) => kept.length > 0);
    assert.deepEqual(unprotected, [], 'the reclaim left cluster objects of gone nodes unprotected');
    for (const v of [...this.held.keys()]) {
      const owner = this.alive.find((n) => n.alloc.ownerOf(v) === n.id);
      assert.ok(owner !== undefined, `no live owner for held value ${v}`);
      assert.equal(owner.alloc.free(v, []).kind, 'freed');
      this.held.delete(v);
    }
    this.syncAll();
    const size = this.end - this.start;
    let owned = 0;
    let free = 0;
    for (const node of this.alive) {
      const s = node.alloc.stats();
      assert.deepEqual([s.allocated, s.awaitingHandover], [0, 0], `${node.id} still holds values`);
      owned += s.owned;
      free += s.free;
      assert.deepEqual(node.alloc.ring, (this.alive[0] as Node).alloc.ring, 'live nodes disagree on the ring');
    }
    assert.equal(owned, size, 'owned ranges of live nodes do not cover the space exactly');
    assert.equal(free, size, 'free space did not return to the full size');
    const ring = (this.alive[0] as Node).alloc.ring;
    assert.equal(ranges(ring).reduce((sum, r) => sum + r.token.free, 0), size, 'published free counts do not add up');
    const liveIds = new Set(this.alive.map((n) => n.id));
    for (const r of ranges(ring)) assert.ok(liveIds.has(r.token.owner), `range at ${r.start} still owned by departed ${r.token.owner}`);
  }
}

test('at least 25k random operations: never a duplicate, never an unreachable owner, all space back at the end', (t) => {
  const totals = { allocated: 0, requests: 0, refusedUnreachable: 0, exhausted: 0, reclaimed: 0, reclaimBlocked: 0, ops: 0 };
  fc.assert(
    fc.property(fc.constantFrom(12, 64, 1000), fc.array(opArb, { minLength: 250, maxLength: 1000, size: 'max' }), (size, ops) => {
      const cluster = new Cluster(100, 100 + size);
      for (const op of ops) {
        cluster.apply(op);
        cluster.check();
      }
      cluster.drain();
      totals.ops += ops.length;
      for (const k of ['allocated', 'requests', 'refusedUnreachable', 'exhausted', 'reclaimed', 'reclaimBlocked'] as const) totals[k] += cluster.stats[k];
    }),
    { numRuns: 100, includeErrorInReport: true },
  );
  t.log(JSON.stringify(totals));
  // The histories must actually exercise the interesting paths.
  t.true(totals.ops >= 10_000);
  t.true(totals.requests > 100);
  t.true(totals.refusedUnreachable > 10);
  t.true(totals.exhausted > 10);
  t.true(totals.reclaimed > 100, 'reclaims took over gone nodes’ tokens');
  t.true(totals.reclaimBlocked > 10, 'reclaims waited for unreachable members');
});
