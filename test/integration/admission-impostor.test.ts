// A removed host keeps the cluster CA key, so it can present a TLS chain that
// a joiner's pin accepts. Posing as an admission server, it must learn nothing
// that lets it in: the joiner refuses it before sending anything but a nonce,
// and the token secret never crosses the wire, whoever the server is.
//
// The impostor is a plain HTTP/2 server that records every byte the joiner
// sends and answers the join handshake as well as it can with the secret it
// knows. The control case (an impostor that does know the current secret)
// shows that the refusal is about the secret, not about a broken impostor.
import test from 'ava';
import http2 from 'node:http2';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import protobuf from 'protobufjs';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import { DataDir, type NodeKeys } from '../../agent/daemon/data-dir.ts';
import { joinCluster } from '../../agent/cluster/admission-client.ts';
import { PROTO_DIR } from '../../agent/wire/protos.ts';
import { createClusterCa, issueNodeCertificate, toPem, type ClusterCa } from '../../controlplane/security/certificates.ts';
import { caDigestOf, newTokenSecret, type JoinToken } from '../../controlplane/security/token.ts';

const dirs: string[] = [];
test.after.always(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

async function keysIn(): Promise<NodeKeys> {
  const dir = mkdtempSync(join(tmpdir(), 'weft-impostor-'));
  dirs.push(dir);
  return new DataDir(dir).loadOrCreateKeys();
}

interface Impostor {
  port: number;
  /** Every DATA byte the joiner sent, all streams. */
  received: () => Buffer;
  /** gRPC messages the joiner sent, in order. */
  messages: Buffer[];
  close: () => Promise<void>;
}

function grpcFrame(message: Uint8Array): Buffer {
  const header = Buffer.alloc(5);
  header.writeUInt32BE(message.length, 1);
  return Buffer.concat([header, message]);
}

/** A server with a valid node certificate from the cluster CA that knows `secret` (an old one, for a removed host). */
async function startImpostor(ca: ClusterCa, secret: Uint8Array): Promise<Impostor> {
  const keys = await keysIn();
  const leaf = await issueNodeCertificate(ca, { nodeId: 'f'.repeat(32), peerId: peerIdFromPrivateKey(keys.libp2pKey).toString(), publicKeySpki: keys.tls.publicKeySpki, ip: '127.0.0.1' }, new Date());
  const chunks: Buffer[] = [];
  const messages: Buffer[] = [];
  const server = http2.createSecureServer({
    key: toPem(keys.tls.privateKeyPkcs8, 'PRIVATE KEY'),
    cert: toPem(leaf, 'CERTIFICATE') + toPem(ca.certificate, 'CERTIFICATE'),
  });
  server.on('stream', (stream) => {
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
    stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '13', 'grpc-message': 'impostor' }));
    let pending = Buffer.alloc(0);
    stream.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 5 && pending.length >= 5 + pending.readUInt32BE(1)) {
        const message = pending.subarray(5, 5 + pending.readUInt32BE(1));
        pending = pending.subarray(5 + message.length);
        messages.push(message);
        void answer(message).then((reply) => {
          if (reply) stream.write(reply);
          else stream.end();
        });
      }
    });
    stream.on('end', () => {
      if (!stream.writableEnded) stream.end();
    });
    stream.on('error', () => undefined);
  });
  // Answers a hello the way a member would, but with the secret it knows.
  async function answer(message: Buffer): Promise<Buffer | undefined> {
    try {
      const root = protobuf.loadSync(join(PROTO_DIR, 'admission.proto'));
      const clientType = root.lookupType('weft.admission.JoinClientMessage');
      const serverType = root.lookupType('weft.admission.JoinServerMessage');
      const decoded = clientType.toObject(clientType.decode(message)) as { hello?: { clientNonce: Uint8Array } };
      if (!decoded.hello) return undefined;
      const { serverProof } = await import('../../controlplane/security/join-proof.ts');
      const serverNonce = new Uint8Array(32).fill(7);
      const proof = serverProof(secret, { clientNonce: new Uint8Array(decoded.hello.clientNonce), serverNonce, serverCertificate: leaf });
      return grpcFrame(serverType.encode(serverType.fromObject({ challenge: { serverNonce, serverProof: proof } })).finish());
    } catch {
      return undefined; // not a message of the join handshake: just end the stream
    }
  }
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    port: (server.address() as AddressInfo).port,
    received: () => Buffer.concat(chunks),
    messages,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

const identity = { name: 'joiner', advertiseAddr: '127.0.0.1', gossipPort: 7946, admissionPort: 2377 };

test('a server with the CA key but not the current secret is refused, and sees only a nonce', async (t) => {
  const ca = await createClusterCa(new Date());
  const oldSecret = newTokenSecret();
  const token: JoinToken = { caDigest: caDigestOf(ca.certificate), secret: newTokenSecret() };
  const impostor = await startImpostor(ca, oldSecret);
  t.teardown(() => impostor.close());
  const error = await t.throwsAsync(joinCluster({ host: '127.0.0.1', port: impostor.port }, token, await keysIn(), identity));
  t.is(impostor.received().indexOf(Buffer.from(token.secret)), -1, 'the token secret reached the impostor');
  t.regex(error!.message, /join token secret is not valid/);
  t.regex(error!.message, /nothing secret was sent/);
  t.is(impostor.messages.length, 1, 'the joiner sent more than its hello to a server that failed the proof');
  t.true(impostor.messages[0]!.length <= 40, `the hello is a nonce, not ${impostor.messages[0]!.length} bytes`);
});

test('control: an impostor that knows the current secret gets the request, yet never the secret itself', async (t) => {
  const ca = await createClusterCa(new Date());
  const token: JoinToken = { caDigest: caDigestOf(ca.certificate), secret: newTokenSecret() };
  const impostor = await startImpostor(ca, token.secret);
  t.teardown(() => impostor.close());
  const error = await t.throwsAsync(joinCluster({ host: '127.0.0.1', port: impostor.port }, token, await keysIn(), identity));
  t.notRegex(error!.message, /secret is not valid/);
  t.is(impostor.messages.length, 2, 'the joiner went on once the proof checked out');
  t.is(impostor.received().indexOf(Buffer.from(token.secret)), -1, 'the raw secret crossed the wire');
});
