// Joining a cluster from the new host's side. First an unauthenticated TLS
// handshake fetches the server's chain, and the CA whose SHA-256 matches the
// token is pinned; only then does a gRPC call over TLS verified against that
// CA carry the secret. A server of another cluster never sees the secret.
import * as grpc from '@grpc/grpc-js';
import tls from 'node:tls';
import { timingSafeEqual } from 'node:crypto';
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
  const reply = await callJoin(target, ca, {
    secret: token.secret,
    name: identity.name,
    advertiseAddr: identity.advertiseAddr,
    gossipPort: identity.gossipPort,
    admissionPort: identity.admissionPort,
    libp2pPublicKey: publicKeyToProtobuf(keys.libp2pKey.publicKey),
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

type UnaryCall = (request: object, options: grpc.CallOptions, callback: (error: grpc.ServiceError | null, reply: Record<string, unknown>) => void) => void;

function callJoin(target: JoinTarget, ca: Uint8Array, request: Record<string, unknown>): Promise<Record<string, unknown>> {
  const credentials = grpc.credentials.createSsl(Buffer.from(toPem(ca, 'CERTIFICATE')));
  const client = new AdmissionService(`${target.host}:${target.port}`, credentials, {
    // Members are dialled by IP; every node certificate carries DNS:localhost.
    'grpc.ssl_target_name_override': 'localhost',
    'grpc.default_authority': 'localhost',
  });
  return new Promise((resolve, reject) => {
    const deadline = new Date(Date.now() + CONNECT_TIMEOUT_MS * 3);
    const join = client['Join'] as unknown as UnaryCall;
    join.call(client, request, { deadline }, (error, reply) => {
      client.close();
      if (error) reject(new JoinError(`join refused by ${target.host}:${target.port}: ${error.details || error.message}`));
      else resolve(reply);
    });
  });
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
