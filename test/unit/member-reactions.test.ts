// The healing rules a member's liveness change triggers (controlplane/cluster/
// member-reactions.ts) and the connection rules behind them (agent/cluster/
// stale-connections.ts), without a network: the state machine's real
// transitions on one side, stand-in connections on the other.
import test from 'ava';
import { generateKeyPair } from '@libp2p/crypto/keys';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import type { Connection, PeerId } from '@libp2p/interface';
import { reactionToMemberChange } from '../../controlplane/cluster/member-reactions.ts';
import { Membership, mulberry32, type Effect, type MemberState, type SwimMessage } from '../../controlplane/membership/index.ts';
import { SUPERSEDED_AFTER_MS, abortConnections, abortSuperseded, newestOpenConnection, type ConnectionSource } from '../../agent/cluster/stale-connections.ts';
import { UNSIGNED_CLAIMS } from '../../controlplane/membership/claim-signing.ts';

test('dead → alive starts a sync; no other transition does', (t) => {
  const states: Array<MemberState | null> = [null, 'alive', 'suspect', 'dead', 'left'];
  for (const previous of states) {
    for (const state of states.slice(1) as MemberState[]) {
      const expected = previous === 'dead' && state === 'alive';
      t.is(reactionToMemberChange(state, previous).sync, expected, `${previous} → ${state}`);
    }
  }
});

test('a dead member loses its connections and its entries; a suspect one keeps both', (t) => {
  t.like(reactionToMemberChange('dead', 'suspect'), { dropConnections: true, visible: false });
  t.like(reactionToMemberChange('suspect', 'alive'), { dropConnections: false, visible: true });
  t.like(reactionToMemberChange('alive', 'dead'), { dropConnections: false, visible: true });
  t.like(reactionToMemberChange('left', 'alive'), { dropConnections: false, visible: false });
});

/** Drives one Membership whose peer b stops answering, is declared dead, then comes back. */
function deadAndBack(): Array<{ state: MemberState; previous: MemberState | null }> {
  const m = new Membership({ self: { id: 'a', address: 'addr-a' }, rng: mulberry32(7), now: 0, claims: UNSIGNED_CLAIMS });
  const changes: Array<{ state: MemberState; previous: MemberState | null }> = [];
  let bDown = false;
  let now = 0;
  const process = (effects: Effect[]): void => {
    for (const e of effects) {
      if (e.kind === 'member-changed' && e.member.id === 'b') changes.push({ state: e.member.state, previous: e.previous });
      if (e.kind === 'send' && e.message.kind === 'ping' && !(bDown && e.to === 'b')) {
        process(m.handle(now, e.to, { kind: 'ack', seq: e.message.seq, updates: [] } satisfies SwimMessage));
      }
    }
  };
  process(m.addMember(0, { id: 'b', address: 'addr-b', incarnation: 0 }));
  process(m.addMember(0, { id: 'c', address: 'addr-c', incarnation: 0 }));
  const runUntil = (until: number): void => {
    while (m.nextDeadline() <= until) {
      now = Math.max(now, m.nextDeadline());
      process(m.tick(now));
    }
    now = until;
  };
  runUntil(5_000);
  bDown = true;
  runUntil(60_000);
  bDown = false;
  // b hears it was declared dead and refutes with a higher incarnation.
  process(m.handle(now, 'b', { kind: 'gossip', updates: [{ node: 'b', address: 'addr-b', incarnation: 1, state: 'alive', from: 'b' }] }));
  runUntil(65_000);
  return changes;
}

test('the state machine reports a return from dead as dead → alive, which syncs exactly once', (t) => {
  const changes = deadAndBack();
  t.true(changes.some((c) => c.state === 'dead'), `b was never declared dead: ${JSON.stringify(changes)}`);
  t.is(changes.filter((c) => reactionToMemberChange(c.state, c.previous).sync).length, 1, JSON.stringify(changes));
  t.is(changes.filter((c) => reactionToMemberChange(c.state, c.previous).dropConnections).length, 1, JSON.stringify(changes));
});

interface StandIn {
  id: string;
  remotePeer: PeerId;
  status: 'open' | 'closing' | 'closed';
  timeline: { open: number };
  aborted: boolean;
  abort(error: Error): void;
}

function standIn(id: string, remotePeer: PeerId, openedAt: number, status: StandIn['status'] = 'open'): StandIn {
  return { id, remotePeer, status, timeline: { open: openedAt }, aborted: false, abort() { this.aborted = true; this.status = 'closed'; } };
}

function source(connections: StandIn[]): ConnectionSource {
  const list = (peer?: PeerId): StandIn[] => connections.filter((c) => !c.aborted && (peer === undefined || c.remotePeer.equals(peer)));
  return { getConnections: ((peer?: PeerId) => list(peer) as unknown as Connection[]) as ConnectionSource['getConnections'] };
}

const newPeer = async (): Promise<PeerId> => peerIdFromPrivateKey(await generateKeyPair('Ed25519'));

test('a connection from a peer supersedes its connections opened more than 5 s earlier, and only those', async (t) => {
  const [b, c] = [await newPeer(), await newPeer()];
  const stalled = standIn('old', b, 0);
  const racing = standIn('race', b, 20_000 - SUPERSEDED_AFTER_MS + 1);
  const other = standIn('other', c, 0);
  const fresh = standIn('fresh', b, 20_000);
  const node = source([stalled, racing, other, fresh]);
  t.is(abortSuperseded(node, fresh as unknown as Connection), 1);
  t.true(stalled.aborted, 'the connection from before the partition is aborted');
  t.false(racing.aborted, 'a simultaneous dial from the same peer stays');
  t.false(other.aborted, "another peer's connection stays");
  t.false(fresh.aborted);
});

test('a dead member has every one of its connections aborted, no one else’s', async (t) => {
  const [b, c] = [await newPeer(), await newPeer()];
  const ofB = [standIn('b1', b, 0), standIn('b2', b, 9_000)];
  const ofC = standIn('c1', c, 0);
  t.is(abortConnections(source([...ofB, ofC]), b.toString(), 'dead'), 2);
  t.true(ofB.every((x) => x.aborted));
  t.false(ofC.aborted);
});

test('a return from dead syncs on the newest open connection', async (t) => {
  const b = await newPeer();
  const older = standIn('older', b, 1_000);
  const newest = standIn('newest', b, 5_000);
  const closing = standIn('closing', b, 9_000, 'closing');
  t.is(newestOpenConnection(source([older, newest, closing]), b.toString())?.id, 'newest');
  t.is(newestOpenConnection(source([]), b.toString()), undefined);
});
