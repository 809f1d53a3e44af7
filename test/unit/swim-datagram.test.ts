// SWIM datagrams (agent/cluster/swim-datagram.ts, swim-udp.ts): a sealed
// packet opens only with the cluster key, only at its recipient, only when
// signed by the key of the member it names; every other datagram is dropped
// with its reason and never reaches membership; on loopback a ping arrives
// as one datagram and bad ones are counted.
import test from 'ava';
import { generateKeyPairSync, randomBytes, sign as edSign, verify as edVerify, type KeyObject } from 'node:crypto';
import { createSocket } from 'node:dgram';
import type { SwimMessage } from '../../controlplane/membership/index.ts';
import { DatagramError, MAX_DATAGRAM_BYTES, datagramKey, openDatagram, sealDatagram, type DropReason } from '../../agent/cluster/swim-datagram.ts';
import { SwimUdp, udpEndpointOf } from '../../agent/cluster/swim-udp.ts';
import { encodeSwim, decodeSwim } from '../../agent/wire/swim-codec.ts';
import { newPsk } from '../../agent/cluster/psk.ts';
import { eventually } from '../helpers/weft-cli.ts';

const A = 'a'.repeat(32);
const B = 'b'.repeat(32);
const C = 'c'.repeat(32);
const keys = new Map<string, { privateKey: KeyObject; publicKey: KeyObject }>([A, B, C].map((id) => [id, generateKeyPairSync('ed25519')]));
const signAs = (id: string) => (bytes: Uint8Array): Uint8Array => new Uint8Array(edSign(null, bytes, keys.get(id)!.privateKey));
/** A and B are active members; C has the PSK but is not (a removed node). */
const verifyMember = (id: string, bytes: Uint8Array, signature: Uint8Array): boolean =>
  (id === A || id === B) && edVerify(null, bytes, keys.get(id)!.publicKey, signature);
const psk = newPsk();
const key = datagramKey(psk);
const ping: SwimMessage = { kind: 'ping', seq: 7, target: B, sourceAddress: '/ip4/127.0.0.1/tcp/1/p2p/x', updates: [] };
const sealed = (over: Partial<Parameters<typeof sealDatagram>[0]> = {}): Buffer =>
  sealDatagram({ key, sender: A, recipient: B, payload: encodeSwim(ping), sign: signAs(A), ...over });

function reasonOf(datagram: Uint8Array, self = B): DropReason | 'opened' {
  try {
    openDatagram(key, self, datagram, verifyMember);
    return 'opened';
  } catch (error) {
    if (error instanceof DatagramError) return error.reason;
    throw error;
  }
}

test('a sealed ping opens at its recipient, from its sender, unchanged', (t) => {
  const opened = openDatagram(key, B, sealed(), verifyMember);
  t.is(opened.sender, A);
  t.deepEqual(decodeSwim(opened.payload), ping);
});

test('another cluster\'s key, a flipped bit, a short or oversized datagram do not open', (t) => {
  t.is(reasonOf(sealed({ key: datagramKey(newPsk()) })), 'undecryptable');
  for (const at of [0, 5, 20, 60, 100]) {
    const tampered = sealed();
    tampered[at]! ^= 1;
    t.is(reasonOf(tampered), 'undecryptable', `bit flipped at byte ${at}`);
  }
  t.is(reasonOf(sealed().subarray(0, 40)), 'undecryptable');
  t.is(reasonOf(randomBytes(MAX_DATAGRAM_BYTES + 1)), 'oversized');
});

test('a datagram for another member, or signed by a key that is not the named active member\'s, is refused', (t) => {
  // The recipient is signed, not sent: another member's check fails.
  t.is(reasonOf(sealed(), A), 'badSignature');
  // C holds the PSK but is not an active member.
  t.is(reasonOf(sealed({ sender: C, sign: signAs(C) })), 'badSignature');
  // C claims to be A: the signature is not A's.
  t.is(reasonOf(sealed({ sender: A, sign: signAs(C) })), 'badSignature');
});

test('random bytes never throw anything but a DatagramError', (t) => {
  for (let i = 0; i < 2_000; i++) {
    const junk = randomBytes(1 + (i % 400));
    if (i % 2 === 0) junk[0] = 1;
    t.not(reasonOf(junk), 'opened');
  }
});

test('udpEndpointOf reads the IPv4 address and port of a SWIM address only', (t) => {
  t.deepEqual(udpEndpointOf('/ip4/198.18.0.2/tcp/7946/p2p/12D3KooW'), { ip: '198.18.0.2', port: 7946 });
  t.is(udpEndpointOf('/ip4/198.18.0.300/tcp/7946/p2p/x'), undefined);
  t.is(udpEndpointOf('/ip4/198.18.0.2/tcp/70000/p2p/x'), undefined);
  t.is(udpEndpointOf('/dns4/example/tcp/7946/p2p/x'), undefined);
  t.is(udpEndpointOf('sim://a'), undefined);
});

async function endpoint(self: string, port: number, members: readonly string[]) {
  const received: Array<{ from: string; message: SwimMessage }> = [];
  const dropped: DropReason[] = [];
  const udp = await SwimUdp.bind({
    selfId: self, psk, listenIp: '127.0.0.1', port, isMemberAddress: (ip) => members.includes(ip), sign: signAs(self), verifyMember,
    receive: (from, message) => received.push({ from, message }), onDrop: (reason) => dropped.push(reason),
  });
  return { udp, received, dropped };
}

test('over loopback: a ping is one datagram; junk and non-member sources are dropped and counted', async (t) => {
  const port = 20_000 + Math.floor(Math.random() * 20_000);
  const a = await endpoint(A, port, ['127.0.0.1']);
  const b = await endpoint(B, port + 1, ['127.0.0.1']);
  t.teardown(() => { a.udp.close(); b.udp.close(); });
  t.true(a.udp.send(B, `/ip4/127.0.0.1/tcp/${port + 1}/p2p/x`, ping));
  await eventually('the ping to arrive', async () => b.received.length === 1, 10_000);
  t.deepEqual(b.received[0], { from: A, message: ping });
  // Not a member's address: not sent at all.
  t.false(a.udp.send(B, `/ip4/127.0.0.9/tcp/${port + 1}/p2p/x`, ping));
  const junk = createSocket('udp4');
  const outsider = createSocket('udp4');
  t.teardown(() => { junk.close(); outsider.close(); });
  await new Promise<void>((resolve) => outsider.bind(0, '127.0.0.2', resolve));
  junk.send(randomBytes(200), port + 1, '127.0.0.1');
  outsider.send(sealed(), port + 1, '127.0.0.1');
  await eventually('both datagrams to be dropped', async () => b.dropped.length === 2, 10_000);
  t.deepEqual([...b.dropped].sort(), ['notMember', 'undecryptable']);
  t.is(b.received.length, 1);
});

test('a packet membership throws on is dropped and counted; the socket keeps serving', async (t) => {
  const port = 20_000 + Math.floor(Math.random() * 20_000);
  const a = await endpoint(A, port, ['127.0.0.1']);
  const dropped: DropReason[] = [];
  let calls = 0;
  const b = await SwimUdp.bind({
    selfId: B, psk, listenIp: '127.0.0.1', port: port + 1, isMemberAddress: () => true, sign: signAs(B), verifyMember,
    receive: () => {
      calls += 1;
      if (calls === 1) throw new Error('membership refused it');
    },
    onDrop: (reason) => dropped.push(reason),
  });
  t.teardown(() => { a.udp.close(); b.close(); });
  const to = `/ip4/127.0.0.1/tcp/${port + 1}/p2p/x`;
  a.udp.send(B, to, ping);
  await eventually('the first ping to be dropped', async () => dropped.length === 1, 10_000);
  a.udp.send(B, to, ping);
  await eventually('the second ping to be taken', async () => calls === 2, 10_000);
  t.deepEqual(dropped, ['badPacket']);
});

test('a port already taken is refused with the port named; a recipient that is not a node ID is left to the stream', async (t) => {
  const port = 20_000 + Math.floor(Math.random() * 20_000);
  const first = await endpoint(A, port, ['127.0.0.1']);
  t.teardown(() => first.udp.close());
  const error = await t.throwsAsync(endpoint(B, port, ['127.0.0.1']));
  t.regex(error.message, new RegExp(`127\\.0\\.0\\.1:${port}/udp.*--gossip-port`));
  t.false(first.udp.send('not-a-node-id', `/ip4/127.0.0.1/tcp/${port}/p2p/x`, ping));
});
