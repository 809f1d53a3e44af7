// The simulator runs the agent's roster: the record intake and rules
// (controlplane/cluster/record-intake.ts, member-record-rules.ts), the
// production functions, on member records that travel by gossip on the
// cluster topic and by sync. The cases follow test/unit/member-record-rules.test.ts;
// each refusal must carry the very words the production rules give, since
// the simulated node does not judge records by itself. Credentials are the
// simulator's stand-ins (controlplane/sim/sim-roster.ts).
import test from 'ava';
import { gossipWriterProblem, judgeRecord } from '../../controlplane/cluster/member-record-rules.ts';
import { MAX_VERSION_JUMP, type MemberRecord } from '../../controlplane/cluster/roster.ts';
import { TablesCluster } from '../../controlplane/sim/tables-cluster.ts';
import { signRecordAs, standInCertificate, standInPeerId, standInVerify } from '../../controlplane/sim/sim-roster.ts';
import { endpointsTable } from '../../controlplane/node/topics.ts';

const NET1 = endpointsTable('net1');

function settled(n = 10, seed = 7): TablesCluster {
  const cluster = new TablesCluster({ n, seed });
  cluster.sim.runUntil(3_000); // meshes formed
  return cluster;
}

const recordOf = (cluster: TablesCluster, nodeId: string): MemberRecord => cluster.node(nodeId).members.roster.get(nodeId) as MemberRecord;

/** `publisher` gossips `record` on the cluster topic; returns what every other node refused. */
function gossip(cluster: TablesCluster, publisher: string, record: MemberRecord): Map<string, string[]> {
  const before = new Map(cluster.ids.map((id) => [id, cluster.node(id).refusedRecords.length]));
  cluster.sim.invoke(publisher, (node, now) => node.publishRecords(now, [record]));
  cluster.sim.runFor(2_000);
  return new Map(cluster.ids.filter((id) => id !== publisher).map((id) => [id, cluster.node(id).refusedRecords.slice(before.get(id))]));
}

/** The production rules' verdict on `record` as `observer` holds the roster now. */
function agentProblem(cluster: TablesCluster, observer: string, record: MemberRecord, sender: string): string | undefined {
  const roster = cluster.node(observer).members.roster;
  const byGossip = gossipWriterProblem(record, sender);
  if (byGossip !== undefined) return byGossip;
  const verdict = judgeRecord(record, {
    selfId: observer,
    self: roster.get(observer) as MemberRecord,
    held: roster.get(record.nodeId)?.version,
    activePeerOf: (id) => (roster.get(id)?.status === 'active' ? roster.get(id)?.peerId : undefined),
    verify: standInVerify,
  });
  return verdict.kind === 'refuse' ? verdict.problem : undefined;
}

const forgeries: Array<[string, (cluster: TablesCluster) => MemberRecord]> = [
  // n1 says n2 left: only n2 may write its record as left (signed by n1, the writer it names).
  ['another member\'s record written by the publisher', (c) => signRecordAs(standInPeerId('n1'), { ...recordOf(c, 'n2'), status: 'left', version: 3, changedBy: 'n1' })],
  // n1 relays a record of n2 claiming n2 wrote it: gossip carries only the sender's own writes.
  ['a record claiming another writer', (c) => signRecordAs(standInPeerId('n1'), { ...recordOf(c, 'n2'), status: 'left', version: 3, changedBy: 'n2' })],
  ['a version far ahead', (c) => signRecordAs(standInPeerId('n1'), { ...recordOf(c, 'n1'), version: 2 + MAX_VERSION_JUMP + 1 })],
  ['an unsigned version', (c) => ({ ...recordOf(c, 'n1'), version: 3, signature: new Uint8Array() })],
  ['a version signed with another key', (c) => signRecordAs(standInPeerId('n2'), { ...recordOf(c, 'n1'), version: 3, name: 'moved' })],
  ['a certificate for another node', (c) => signRecordAs(standInPeerId('n1'), { ...recordOf(c, 'n1'), version: 3, certificate: standInCertificate('n2', standInPeerId('n1')) })],
];

for (const [what, forge] of forgeries) {
  test(`gossip of ${what} is refused on every node, as the agent refuses it`, (t) => {
    const cluster = settled();
    const record = forge(cluster);
    const held = cluster.node('n0').members.roster.get(record.nodeId);
    const expected = record.certificate === recordOf(cluster, record.nodeId).certificate ? agentProblem(cluster, 'n0', record, 'n1') : `certificate of ${record.nodeId} binds a different node or peer ID`;
    t.truthy(expected, 'the production rules refuse this record');
    const refused = gossip(cluster, 'n1', record);
    for (const [id, problems] of refused) {
      t.deepEqual(problems, [expected], `${id} refused it in the rules' words`);
      t.deepEqual(cluster.node(id).members.roster.get(record.nodeId), held, `${id} still holds the record it had`);
    }
  });
}

test('a member\'s own change, gossiped, reaches every roster', (t) => {
  const cluster = settled();
  const moved = signRecordAs(standInPeerId('n3'), { ...recordOf(cluster, 'n3'), address: 'sim://n3-moved', version: 3 });
  const refused = gossip(cluster, 'n3', moved);
  for (const [id, problems] of refused) {
    t.deepEqual(problems, [], `${id} refused nothing`);
    t.is(cluster.node(id).members.roster.get('n3')?.address, 'sim://n3-moved');
  }
});

test('a stale version of our own record, relayed by sync, is outvoted by a newer one of ours everywhere', (t) => {
  const cluster = settled();
  // n1 holds n3's record as left at version 5, from an earlier life of n3 (n3 signed it then).
  const earlier = signRecordAs(standInPeerId('n3'), { ...recordOf(cluster, 'n3'), status: 'left', version: 5 });
  t.is(cluster.node('n1').members.roster.merge(earlier), 'updated');
  cluster.exchange('n3', 'n1'); // n1's answer carries the records n3 lacks
  cluster.sim.runFor(2_000);
  const holdsNew = (id: string) => cluster.node(id).members.roster.get('n3')?.version === 6 && cluster.node(id).members.roster.get('n3')?.status === 'active';
  t.true(cluster.ids.filter((id) => id !== 'n1').every(holdsNew), 'n3 wrote version 6 and its gossip reached everyone who holds it active');
  // n1 holds n3 as left, so it takes nothing n3 publishes or sends (the agent's topic validator
  // and sync intake accept only active members); a periodic round with anyone else brings it.
  t.false(holdsNew('n1'));
  t.true(cluster.sim.runUntilTrue(cluster.sim.now + 120_000, () => holdsNew('n1')), 'n1 got n3\'s new version by sync from another member');
});

test('a revocation spreads to every roster; the revoked node leaves and nobody connects to it again', (t) => {
  const cluster = settled();
  cluster.write('n5', NET1, 'n5-endpoint', new Uint8Array([1]));
  cluster.sim.runFor(1_000);
  cluster.revoke('n0', 'n5');
  cluster.sim.runFor(5_000);
  const others = cluster.ids.filter((id) => id !== 'n5');
  for (const id of others) t.is(cluster.node(id).members.roster.get('n5')?.status, 'revoked', `${id} holds n5 revoked`);
  t.false(cluster.sim.isUp('n5'), 'n5 learnt it was revoked and left');
  t.deepEqual(others.filter((id) => cluster.node(id).isConnected('n5')), [], 'no connection to n5 is left or re-dialled');
  // A new entry in n5's name is refused: its owner is no longer admitted.
  const refused = cluster.node('n0').core.step(cluster.sim.now, { kind: 'gossip', from: 'n5', topic: 'weft/net/net1/1', entries: [{ table: NET1, key: 'late', owner: 'n5', lamport: 99, deleted: false, reapInMs: 0, value: new Uint8Array([2]) }] });
  t.is(refused.refused, 1);
});
