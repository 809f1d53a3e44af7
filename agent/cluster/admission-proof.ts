// A joining host proves that it holds the libp2p key whose peer ID will go into
// its certificate: it signs a digest of the TLS public key the certificate will
// bind. Without this, a token holder could have a certificate issued for
// someone else's peer ID.
import { createHash } from 'node:crypto';
import { publicKeyFromProtobuf } from '@libp2p/crypto/keys';
import { peerIdFromPublicKey } from '@libp2p/peer-id';
import type { PrivateKey } from '@libp2p/interface';

const CONTEXT = 'weft-admission-v1\n';

export function proofPayload(tlsPublicKeySpki: Uint8Array): Uint8Array {
  const digest = createHash('sha256').update(tlsPublicKeySpki).digest('hex');
  return new TextEncoder().encode(CONTEXT + digest);
}

export async function signProof(key: PrivateKey, tlsPublicKeySpki: Uint8Array): Promise<Uint8Array> {
  return key.sign(proofPayload(tlsPublicKeySpki));
}

/** Returns the proven peer ID, or undefined when the key or the signature is not valid. */
export async function verifyProof(libp2pPublicKey: Uint8Array, tlsPublicKeySpki: Uint8Array, proof: Uint8Array): Promise<string | undefined> {
  try {
    const publicKey = publicKeyFromProtobuf(libp2pPublicKey);
    const valid = await publicKey.verify(proofPayload(tlsPublicKeySpki), proof);
    return valid ? peerIdFromPublicKey(publicKey).toString() : undefined;
  } catch {
    return undefined;
  }
}
