// Admitting a joiner (agent/cluster/admission-server.ts, admit) without a
// network: a real roster, CA and keys behind a stand-in for the cluster member.
import test from 'ava';
import { randomBytes } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { generateKeyPair, publicKeyToProtobuf } from '@libp2p/crypto/keys';
import { admit, AdmissionError, type AdmissionRequest, type AdmittingCluster } from '../../agent/cluster/admission-server.ts';
import { signProof } from '../../agent/cluster/admission-proof.ts';
import { Roster } from '../../controlplane/cluster/roster.ts';
import { createClusterCa, generateEcKeyPair } from '../../controlplane/security/certificates.ts';
import { clientProof, type JoinTranscript } from '../../controlplane/security/join-proof.ts';

const secret = new Uint8Array(randomBytes(32));

async function seedMember(): Promise<AdmittingCluster> {
  const ca = await createClusterCa(new Date());
  const roster = new Roster();
  return {
    nodeId: 'seed',
    roster,
    material: { nodeId: 'seed', caCertificate: ca.certificate, caPrivateKey: ca.privateKey, nodeCertificate: ca.certificate, psk: new Uint8Array(32) },
    addAdmitted: (record) => void roster.merge(record),
    snapshot: () => ({ members: roster.all(), token: { secret, version: 1, changedBy: 'seed' }, settings: { defaultAddrPool: '100.64.0.0/10' } }),
  };
}

/** A valid join request from a fresh identity, and the transcript its proof covers. */
async function joiner(name: string): Promise<{ request: AdmissionRequest; transcript: JoinTranscript }> {
  const libp2pKey = await generateKeyPair('Ed25519');
  const tls = await generateEcKeyPair();
  const libp2pPublicKey = publicKeyToProtobuf(libp2pKey.publicKey);
  const transcript: JoinTranscript = { clientNonce: new Uint8Array(32).fill(1), serverNonce: new Uint8Array(32).fill(2), serverCertificate: new Uint8Array([3]) };
  const request: AdmissionRequest = {
    clientProof: clientProof(secret, transcript, libp2pPublicKey, tls.publicKeySpki),
    name,
    advertiseAddr: '198.18.0.2',
    gossipPort: 7946,
    admissionPort: 2377,
    libp2pPublicKey,
    tlsPublicKey: tls.publicKeySpki,
    proof: await signProof(libp2pKey, tls.publicKeySpki),
  };
  return { request, transcript };
}

test('joins from different hosts admitted side by side all land in the roster', async (t) => {
  const seed = await seedMember();
  const joiners = await Promise.all(['h2', 'h3', 'h4', 'h5'].map(joiner));
  await Promise.all(joiners.map(({ request, transcript }) => admit(seed, request, secret, transcript)));
  t.deepEqual(seed.roster.all().map((r) => r.name).sort(), ['h2', 'h3', 'h4', 'h5']);
  t.is(new Set(seed.roster.all().map((r) => r.peerId)).size, 4);
});

test('two joins with one identity at once: one is admitted, the other refused as already a member', async (t) => {
  const seed = await seedMember();
  const { request, transcript } = await joiner('h2');
  // Both start before either finishes: each passes the first identity check, then awaits its certificate.
  const outcomes = await Promise.allSettled([admit(seed, request, secret, transcript), admit(seed, request, secret, transcript)]);
  t.is(outcomes.filter((o) => o.status === 'fulfilled').length, 1);
  const refused = outcomes.find((o) => o.status === 'rejected');
  t.true(refused?.reason instanceof AdmissionError);
  t.is((refused?.reason as AdmissionError).code, grpc.status.ALREADY_EXISTS);
  t.is(seed.roster.all().length, 1, 'one record for the identity');
});

test('a join with the identity of a member is refused before a certificate is issued', async (t) => {
  const seed = await seedMember();
  const { request, transcript } = await joiner('h2');
  await admit(seed, request, secret, transcript);
  const error = await t.throwsAsync(admit(seed, request, secret, transcript), { instanceOf: AdmissionError });
  t.is(error.code, grpc.status.ALREADY_EXISTS);
});
