import test from 'ava';
import fc from 'fast-check';
import { MAX_VERSION_JUMP, Roster, implausibleVersion, type MemberRecord, type MemberStatus } from '../../controlplane/cluster/roster.ts';

const record = (version: number, status: MemberStatus, changedBy = 'a'): MemberRecord => ({
  nodeId: 'n1', name: 'h1', peerId: 'p1', address: '198.18.0.1', gossipPort: 7946, admissionPort: 2377,
  certificate: new Uint8Array([1]), version, status, changedBy,
});

test('a newer version replaces an older one, never the reverse', (t) => {
  const roster = new Roster();
  t.is(roster.merge(record(2, 'active')), 'added');
  t.is(roster.merge(record(1, 'left')), 'ignored');
  t.is(roster.merge(record(3, 'left')), 'updated');
  t.is(roster.get('n1')?.status, 'left');
});

test('revocation is terminal: no later version re-admits the node', (t) => {
  const roster = new Roster();
  roster.merge(record(1, 'active'));
  roster.merge(record(2, 'revoked', 'b'));
  t.is(roster.merge(record(99, 'active')), 'ignored');
  t.false(roster.isAdmitted('p1'));
});

test('merge order does not matter', (t) => {
  const statuses: MemberStatus[] = ['active', 'left', 'revoked'];
  const arb = fc.array(fc.record({ version: fc.nat(5), status: fc.constantFrom(...statuses), by: fc.constantFrom('a', 'b') }), { minLength: 1, maxLength: 8 });
  fc.assert(
    fc.property(arb, (items) => {
      const records = items.map((i) => record(i.version, i.status, i.by));
      const forward = new Roster();
      const backward = new Roster();
      for (const r of records) forward.merge(r);
      for (const r of [...records].reverse()) backward.merge(r);
      const f = forward.get('n1')!;
      const b = backward.get('n1')!;
      t.deepEqual([f.version, f.status, f.changedBy], [b.version, b.status, b.changedBy]);
    }),
  );
});

test('members are found by ID, unique prefix or name; ambiguity is explained', (t) => {
  const roster = new Roster();
  roster.merge({ ...record(1, 'active'), nodeId: 'abc123', name: 'h1', peerId: 'p1' });
  roster.merge({ ...record(1, 'active'), nodeId: 'abd456', name: 'h2', peerId: 'p2' });
  t.is((roster.resolve('abc') as MemberRecord).name, 'h1');
  t.is((roster.resolve('h2') as MemberRecord).nodeId, 'abd456');
  t.regex(roster.resolve('ab') as string, /matches 2 members/);
  t.regex(roster.resolve('zzz') as string, /no member matches/);
});

test('a sync sends only the records the peer lacks or holds in an older version', async (t) => {
  const { recordsNewerThan, summaryOf } = await import('../../controlplane/cluster/roster.ts');
  const mine = [
    { ...record(3, 'active'), nodeId: 'n1' },
    { ...record(1, 'active'), nodeId: 'n2' },
    { ...record(2, 'revoked', 'b'), nodeId: 'n3' },
  ];
  const theirs = [summaryOf({ ...record(3, 'active'), nodeId: 'n1' }), summaryOf({ ...record(5, 'active'), nodeId: 'n3' })];
  // n1: same version (nothing to send); n2: unknown to them; n3: our revocation beats any version.
  t.deepEqual(recordsNewerThan(mine, theirs).map((r) => r.nodeId), ['n2', 'n3']);
  t.deepEqual(recordsNewerThan(mine, mine.map(summaryOf)), [], 'equal rosters exchange no records');
});

test('a received record whose version jumps absurdly ahead is implausible (a forged `left` at 2^53)', (t) => {
  t.truthy(implausibleVersion(2 ** 53, 3));
  t.truthy(implausibleVersion(3 + MAX_VERSION_JUMP + 1, 3));
  t.is(implausibleVersion(3 + MAX_VERSION_JUMP, 3), undefined);
  // A stranger enters with a small version, as admission writes it.
  t.truthy(implausibleVersion(MAX_VERSION_JUMP + 1, undefined));
  t.is(implausibleVersion(1, undefined), undefined);
});
