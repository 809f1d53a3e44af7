// Real cluster material for the seeds: a CA, a node certificate, libp2p and
// TLS keys and an admission proof, made once per run, so that seed frames are
// the ones a real member sends (and pass every check up to the mutated field).
import fc from 'fast-check';
import { generateKeyPair, publicKeyToProtobuf } from '@libp2p/crypto/keys';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import { createClusterCa, generateEcKeyPair, issueNodeCertificate, type ClusterCa } from '../../../controlplane/security/certificates.ts';
import { caDigestOf, newTokenSecret, type JoinToken } from '../../../controlplane/security/token.ts';
import { signProof } from '../../../agent/cluster/admission-proof.ts';
import type { NodeKeys } from '../../../agent/daemon/data-dir.ts';
import type { MemberRecord } from '../../../controlplane/cluster/roster.ts';
import { signedRecordFields } from '../../../controlplane/cluster/record-signing.ts';
import { OwnerKeys } from '../../../agent/cluster/owner-keys.ts';

export interface Material {
  ca: ClusterCa;
  token: JoinToken;
  keys: NodeKeys;
  peerId: string;
  nodeId: string;
  nodeCertificate: Uint8Array;
  libp2pPublicKey: Uint8Array;
  proof: Uint8Array;
  member: MemberRecord;
}

let cached: Promise<Material> | undefined;

export function material(): Promise<Material> {
  cached ??= build();
  return cached;
}

async function build(): Promise<Material> {
  const now = new Date();
  const ca = await createClusterCa(now);
  const libp2pKey = await generateKeyPair('Ed25519');
  const tls = await generateEcKeyPair();
  const peerId = peerIdFromPrivateKey(libp2pKey).toString();
  const nodeId = 'a1'.repeat(16);
  const nodeCertificate = await issueNodeCertificate(ca, { nodeId, peerId, publicKeySpki: tls.publicKeySpki, ip: '198.18.0.2' }, now);
  return {
    ca,
    token: { caDigest: caDigestOf(ca.certificate), secret: newTokenSecret() },
    keys: { libp2pKey, tls },
    peerId,
    nodeId,
    nodeCertificate,
    libp2pPublicKey: publicKeyToProtobuf(libp2pKey.publicKey),
    proof: await signProof(libp2pKey, tls.publicKeySpki),
    member: signedMember(libp2pKey, {
      nodeId, name: 'h2', peerId, address: '198.18.0.2', gossipPort: 7946, admissionPort: 2377,
      certificate: nodeCertificate, version: 3, status: 'active', changedBy: nodeId,
    }),
  };
}

function signedMember(key: NodeKeys['libp2pKey'], record: MemberRecord): MemberRecord {
  return { ...record, signature: new OwnerKeys(key).sign(signedRecordFields(record)) };
}

/** Deterministic samples of a fast-check generator: the structured part of a seed corpus. */
export function samples<T>(arbitrary: fc.Arbitrary<T>, count: number, seed = 7): T[] {
  return fc.sample(arbitrary, { seed, numRuns: count });
}

export const hexId = (length: number): fc.Arbitrary<string> =>
  fc.string({ unit: fc.constantFrom(...'0123456789abcdef'), minLength: length, maxLength: length });
export const nodeIdArb = hexId(32);
export const objectIdArb = hexId(12);
export const nameArb = fc.stringMatching(/^[a-z][a-z0-9-]{0,14}$/);
export const ipArb = fc.ipV4();
