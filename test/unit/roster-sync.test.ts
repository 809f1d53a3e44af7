// What a node sends of its roster and liveness in full and digest rounds
// (agent/cluster/roster-sync.ts), encoded as on the wire.
import test from 'ava';
import { Roster, type MemberRecord } from '../../controlplane/cluster/roster.ts';
import type { MemberView } from '../../controlplane/membership/index.ts';
import { rosterSyncHandlers, type RosterSyncSource } from '../../agent/cluster/roster-sync.ts';
import { decodeSnapshot, encodeSnapshot, isDigestOnly, type Snapshot } from '../../agent/wire/cluster-codec.ts';

const hex = (i: number): string => i.toString(16).padStart(32, '0');
const record = (i: number, version = 1): MemberRecord => ({
  nodeId: hex(i), name: `h${i}`, peerId: `12D3KooWpeer${i}`, address: `198.18.0.${i}`, gossipPort: 7946, admissionPort: 2377,
  certificate: new Uint8Array(800).fill(i), version, status: 'active', changedBy: hex(i),
});
const token = { secret: new Uint8Array(32).fill(5), version: 1, changedBy: hex(1) };

function source(size: number, bump?: number): RosterSyncSource & { differed: number } {
  const roster = new Roster();
  for (let i = 1; i <= size; i++) roster.merge(record(i, i === bump ? 2 : 1));
  const liveness: MemberView[] = roster.all().map((r) => ({ id: r.nodeId, address: `/ip4/${r.address}/tcp/7946/p2p/${r.peerId}`, state: 'alive', incarnation: 0, stateChangedAt: 0 }));
  // A stand-in for the liveness snapshot's bytes: ~200 per member, as the agent's signed entries are.
  const membership = new Uint8Array(200 * size).fill(1);
  const out = {
    roster, differed: 0,
    snapshot: (): Snapshot => ({ members: roster.all(), token, membership }),
    durable: (): Snapshot => ({ members: roster.all(), token }),
    liveness: () => liveness,
    onDiffer: () => void (out.differed += 1),
  };
  return out;
}

const wire = (s: Snapshot): Snapshot => decodeSnapshot(encodeSnapshot(s));

test('a digest round opening and answer stay the same size whatever the roster size', (t) => {
  const sizes = [5, 20, 200].map((n) => {
    const handlers = rosterSyncHandlers(source(n));
    const opening = wire(handlers.opening('digest'));
    t.true(isDigestOnly(opening));
    t.is(opening.members.length, 0);
    t.is(opening.membership, undefined);
    const answer = handlers.answerTo(opening);
    t.deepEqual(handlers.recordsFor(wire(answer)), []);
    return [encodeSnapshot(handlers.opening('digest')).length, encodeSnapshot(answer).length];
  });
  t.deepEqual(sizes[0], sizes[2], `digest round bytes by roster size: ${JSON.stringify(sizes)}`);
  t.true(sizes[0]![0]! < 150);
});

test('a full round still summarises the roster and answers with the records the peer lacks', (t) => {
  const ours = rosterSyncHandlers(source(20, 7));
  const theirs = rosterSyncHandlers(source(20));
  const opening = wire(theirs.opening('full'));
  t.false(isDigestOnly(opening));
  t.is(opening.summary?.length, 20);
  const answer = wire(ours.answerTo(opening));
  t.deepEqual(answer.members.map((r) => r.name), ['h7']);
  t.is(answer.summary?.length, 20);
});

test('equal state is in sync; one bumped record is not, and the difference is counted', (t) => {
  const a = source(20);
  const b = source(20, 3);
  const handlersA = rosterSyncHandlers(a);
  t.true(handlersA.inSync(wire(rosterSyncHandlers(source(20)).opening('digest'))));
  t.false(handlersA.inSync(wire(rosterSyncHandlers(b).opening('digest'))));
  t.is(a.differed, 1);
});
