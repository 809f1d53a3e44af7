// Joining a cluster from the new host's side. First an unauthenticated TLS
// handshake fetches the server's chain, and the CA whose SHA-256 matches the
// token is pinned; then a Join stream over TLS verified against that CA runs
// the mutual proof of the token secret (controlplane/security/join-proof.ts).
// The secret never leaves this host; a server of another cluster, or one that
// has the CA but not the current secret, sees only a random nonce.
import * as grpc from '@grpc/grpc-js';
import tls from 'node:tls';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { clientProof, NONCE_BYTES, proofsEqual, serverProof, type JoinTranscript } from '../../controlplane/security/join-proof.ts';
import { caDigestOf, type JoinToken } from '../../controlplane/security/token.ts';
import { toPem, verifyNodeCertificate } from '../../controlplane/security/certificates.ts';
import { AdmissionService } from '../wire/protos.ts';
import { decodeSnapshot, type Snapshot } from '../wire/cluster-codec.ts';
import { signProof } from './admission-proof.ts';
import { isValidPsk } from './psk.ts';
import { publicKeyToProtobuf } from '@libp2p/crypto/keys';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import type { NodeKeys, ClusterMaterial } from '../daemon/data-dir.ts';

const CONNECT_TIMEOUT_MS = 10_000;

export class JoinError extends Error {
  override name = 'JoinError';
}

export interface JoinTarget {
  host: string;
  port: number;
}

export interface JoinIdentity {
  name: string;
  advertiseAddr: string;
  gossipPort: number;
  admissionPort: number;
}

export interface JoinResult {
  material: ClusterMaterial;
  snapshot: Snapshot;
}

export async function joinCluster(target: JoinTarget, token: JoinToken, keys: NodeKeys, identity: JoinIdentity): Promise<JoinResult> {
  const ca = await fetchPinnedCa(target, token.caDigest);
  const libp2pPublicKey = publicKeyToProtobuf(keys.libp2pKey.publicKey);
  const reply = await runJoin(target, ca, token.secret, {
    name: identity.name,
    advertiseAddr: identity.advertiseAddr,
    gossipPort: identity.gossipPort,
    admissionPort: identity.admissionPort,
    libp2pPublicKey,
    tlsPublicKey: keys.tls.publicKeySpki,
    proof: await signProof(keys.libp2pKey, keys.tls.publicKeySpki),
  });
  return checkReply(reply, ca, keys, token);
}

/** Returns the DER of the CA certificate in the server's chain whose digest matches the token. */
async function fetchPinnedCa(target: JoinTarget, expectedDigest: Uint8Array): Promise<Uint8Array> {
  const chain = await new Promise<tls.DetailedPeerCertificate>((resolve, reject) => {
    // Verification is deliberately off for this handshake only: we trust
    // nothing from it except a certificate whose digest the token names.
    const socket = tls.connect({ host: target.host, port: target.port, rejectUnauthorized: false, servername: 'localhost', ALPNProtocols: ['h2'] });
    socket.setTimeout(CONNECT_TIMEOUT_MS, () => socket.destroy(new Error('timed out')));
    socket.once('secureConnect', () => {
      resolve(socket.getPeerCertificate(true));
      socket.end();
    });
    socket.once('error', (error) => reject(new JoinError(`cannot reach a weft member at ${target.host}:${target.port}: ${error.message}; check the address and that its agent runs`)));
  });
  const seen = new Set<tls.DetailedPeerCertificate>();
  for (let cert: tls.DetailedPeerCertificate | undefined = chain; cert?.raw && !seen.has(cert); cert = cert.issuerCertificate) {
    seen.add(cert);
    const digest = caDigestOf(new Uint8Array(cert.raw));
    if (digest.length === expectedDigest.length && timingSafeEqual(digest, expectedDigest)) return new Uint8Array(cert.raw);
  }
  throw new JoinError(
    `the member at ${target.host}:${target.port} belongs to a different cluster: its CA does not match the token's CA digest; check that the token and the address are for the same cluster`,
  );
}

interface JoinRequestFields {
  name: string;
  advertiseAddr: string;
  gossipPort: number;
  admissionPort: number;
  libp2pPublicKey: Uint8Array;
  tlsPublicKey: Uint8Array;
  proof: Uint8Array;
}

type JoinCall = grpc.ClientDuplexStream<Record<string, unknown>, Record<string, unknown>>;
type JoinMethod = (options: grpc.CallOptions) => JoinCall;

/**
 * The Join stream: send a nonce, check the server's proof of the secret
 * against the certificate this very connection presented, and only then send
 * our own proof and the request. A server that fails the check has seen a
 * nonce and nothing else.
 */
function runJoin(target: JoinTarget, ca: Uint8Array, secret: Uint8Array, fields: JoinRequestFields): Promise<Record<string, unknown>> {
  let serverCertificate: Uint8Array | undefined;
  const credentials = grpc.credentials.createSsl(Buffer.from(toPem(ca, 'CERTIFICATE')), null, null, {
    // The chain is verified against the pinned CA by gRPC; here we only note
    // which leaf it was, because the server's proof must be bound to it.
    checkServerIdentity: (_host, certificate) => {
      serverCertificate = new Uint8Array(certificate.raw);
      return undefined;
    },
  });
  const client = new AdmissionService(`${target.host}:${target.port}`, credentials, {
    // Members are dialled by IP; every node certificate carries DNS:localhost.
    'grpc.ssl_target_name_override': 'localhost',
    'grpc.default_authority': 'localhost',
  });
  const where = `${target.host}:${target.port}`;
  return new Promise<Record<string, unknown>>((resolve, reject) => {
    const call = (client['Join'] as unknown as JoinMethod).call(client, { deadline: new Date(Date.now() + CONNECT_TIMEOUT_MS * 3) });
    const clientNonce = new Uint8Array(randomBytes(NONCE_BYTES));
    let transcript: JoinTranscript | undefined;
    let settled = false;
    const finish = (outcome: () => void): void => {
      if (settled) return;
      settled = true;
      outcome();
      client.close();
    };
    call.on('data', (message: Record<string, unknown>) => {
      if (transcript === undefined) {
        const answer = checkChallenge(message, secret, clientNonce, serverCertificate, where);
        if (typeof answer === 'string') {
          call.cancel();
          return finish(() => reject(new JoinError(answer)));
        }
        transcript = answer;
        call.write({ request: { ...fields, clientProof: clientProof(secret, transcript, fields.libp2pPublicKey, fields.tlsPublicKey) } });
        return;
      }
      const reply = message['message'] === 'reply' ? (message['reply'] as Record<string, unknown> | undefined) : undefined;
      call.end();
      finish(() => (reply ? resolve(reply) : reject(new JoinError(`the member at ${where} answered the join request with something else than a reply; refusing to join`))));
    });
    call.on('error', (error: grpc.ServiceError) => finish(() => reject(new JoinError(`join refused by ${where}: ${error.details || error.message}`))));
    call.on('end', () => finish(() => reject(new JoinError(`the member at ${where} closed the join before answering`))));
    call.write({ hello: { clientNonce } });
  });
}

/** The transcript when the server proved the secret for the certificate we saw; otherwise why not. */
export function checkChallenge(message: Record<string, unknown>, secret: Uint8Array, clientNonce: Uint8Array, serverCertificate: Uint8Array | undefined, where: string): JoinTranscript | string {
  const challenge = message['message'] === 'challenge' ? (message['challenge'] as Record<string, unknown> | undefined) : undefined;
  const serverNonce = challenge?.['serverNonce'];
  const proof = challenge?.['serverProof'];
  if (!(serverNonce instanceof Uint8Array) || serverNonce.length !== NONCE_BYTES || !(proof instanceof Uint8Array)) {
    return `the member at ${where} did not answer the join with a challenge; refusing to join`;
  }
  if (!serverCertificate) return `could not read the TLS certificate of ${where}; refusing to join`;
  const transcript: JoinTranscript = { clientNonce, serverNonce: new Uint8Array(serverNonce), serverCertificate };
  if (!proofsEqual(new Uint8Array(proof), serverProof(secret, transcript))) {
    return (
      `the join token secret is not valid for the cluster at ${where}: the member could not prove it knows this secret ` +
      '(the token may have been rotated, or the host is no longer a member); nothing secret was sent. Get the current token with `weft token` on a member'
    );
  }
  return transcript;
}

/** Checks a member's answer to a join: every field is the other side's word until verified. */
export async function checkReply(reply: Record<string, unknown>, ca: Uint8Array, keys: NodeKeys, token: JoinToken): Promise<JoinResult> {
  const asBytes = (v: unknown): Uint8Array => (v instanceof Uint8Array ? new Uint8Array(v) : new Uint8Array());
  const nodeId = typeof reply['nodeId'] === 'string' ? reply['nodeId'] : '';
  const material: ClusterMaterial = {
    nodeId,
    caCertificate: asBytes(reply['caCertificate']),
    caPrivateKey: asBytes(reply['caPrivateKey']),
    nodeCertificate: asBytes(reply['nodeCertificate']),
    psk: asBytes(reply['psk']),
  };
  if (!timingSafeEqual(caDigestOf(material.caCertificate), token.caDigest) || Buffer.compare(material.caCertificate, ca) !== 0) {
    throw new JoinError('the member answered with a CA that does not match the token; refusing to join');
  }
  const claims = await verifyNodeCertificate(material.nodeCertificate, ca, new Date()).catch((error: Error) => {
    throw new JoinError(`the member issued an invalid node certificate: ${error.message}`);
  });
  if (claims.nodeId !== nodeId || claims.peerId !== peerIdFromPrivateKey(keys.libp2pKey).toString()) {
    throw new JoinError('the member issued a certificate for another identity; refusing to join');
  }
  if (!isValidPsk(material.psk) || material.caPrivateKey.length === 0) throw new JoinError('the member sent incomplete cluster keys; refusing to join');
  const snapshot = decodeSnapshot(asBytes(reply['snapshot']));
  return { material, snapshot };
}
