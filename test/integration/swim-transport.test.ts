// The SWIM transport between two real libp2p nodes on loopback (PSK, Noise,
// yamux): packets ride one long-lived stream per peer, arrive in order, and a
// stream the receiver drops is replaced on the next packet.
import test from 'ava';
import { generateKeyPair } from '@libp2p/crypto/keys';
import { createWeftLibp2p, type WeftLibp2p } from '../../agent/cluster/libp2p-node.ts';
import { newPsk } from '../../agent/cluster/psk.ts';
import { SWIM_PROTOCOL, registerSwim, sendSwim, swimAddress } from '../../agent/cluster/swim-transport.ts';
import type { SwimMessage } from '../../controlplane/membership/index.ts';
import { eventually } from '../helpers/weft-cli.ts';

const psk = newPsk();
const received: Array<{ from: string; seq: number }> = [];
let admitted = true;
let sender: WeftLibp2p;
let receiver: WeftLibp2p;
let receiverAddress: string;

async function node(): Promise<WeftLibp2p> {
  const n = await createWeftLibp2p({ privateKey: await generateKeyPair('Ed25519'), psk, listenIp: '127.0.0.1', port: 0, isAdmitted: () => true, isMemberAddress: () => true });
  await n.start();
  return n;
}

const ping = (seq: number): SwimMessage => ({ kind: 'ping', seq, target: 'ab'.repeat(16), sourceAddress: swimAddress('127.0.0.1', 7946, sender.peerId.toString()), updates: [] });
const swimStreams = (n: WeftLibp2p): number => n.getConnections().flatMap((c) => c.streams).filter((s) => s.protocol === SWIM_PROTOCOL && s.status === 'open').length;

test.before(async () => {
  [sender, receiver] = [await node(), await node()];
  await registerSwim(receiver, {
    nodeIdOfPeer: (peer) => (admitted && peer === sender.peerId.toString() ? 'sender' : undefined),
    receive: (from, message) => received.push({ from, seq: (message as { seq: number }).seq }),
    onError: () => undefined,
  });
  const port = Number(receiver.getMultiaddrs()[0]!.getComponents().find((c) => c.name === 'tcp')!.value);
  receiverAddress = swimAddress('127.0.0.1', port, receiver.peerId.toString());
});

test.after.always(async () => {
  await Promise.all([sender?.stop(), receiver?.stop()]);
});

test.serial('packets to one peer ride one long-lived stream and arrive in order', async (t) => {
  for (let seq = 1; seq <= 20; seq++) await sendSwim(sender, receiverAddress, ping(seq));
  await eventually('20 packets', async () => received.length === 20);
  t.deepEqual(received.map((r) => r.seq), Array.from({ length: 20 }, (_, i) => i + 1));
  t.true(received.every((r) => r.from === 'sender'));
  t.is(swimStreams(sender), 1, 'one SWIM stream stays open on the sender');
});

test.serial('a peer that is no longer admitted is refused per packet; the next packet after readmission opens a new stream', async (t) => {
  admitted = false;
  received.length = 0;
  await sendSwim(sender, receiverAddress, ping(100));
  // The receiver aborts the stream on the refused packet; the sender sees it closed.
  await eventually('the refused stream to close', async () => swimStreams(sender) === 0);
  t.deepEqual(received, []);
  admitted = true;
  await sendSwim(sender, receiverAddress, ping(101));
  await eventually('the packet after readmission', async () => received.length === 1);
  t.deepEqual(received.map((r) => r.seq), [101]);
});
