// The join handshake's proofs. The token secret never crosses the wire:
// the joiner sends a nonce; the server answers with its own nonce and an
// HMAC, keyed by the secret, of both nonces and the TLS certificate the joiner
// sees. Only a server that knows the CURRENT secret can compute it, and only
// for its own certificate, so a removed host (which still has the CA key and
// can present a valid chain) or a relay to a real member is refused before
// the joiner reveals anything but its nonce. The joiner then proves the secret
// the same way, also binding the keys its certificate will name.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

export const NONCE_BYTES = 32;
const CONTEXT = 'weft-join-v2';

export interface JoinTranscript {
  clientNonce: Uint8Array;
  serverNonce: Uint8Array;
  /** DER of the server's TLS leaf certificate, as the joiner saw it in the handshake. */
  serverCertificate: Uint8Array;
}

/** Length-prefixed concatenation: no two different field lists hash alike. */
function digestOf(label: string, fields: readonly Uint8Array[]): Buffer {
  const hash = createHash('sha256').update(`${CONTEXT}\n${label}\n`);
  for (const field of fields) {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(field.length);
    hash.update(length).update(field);
  }
  return hash.digest();
}

function transcriptDigest(t: JoinTranscript): Buffer {
  return digestOf('transcript', [t.clientNonce, t.serverNonce, createHash('sha256').update(t.serverCertificate).digest()]);
}

/** The server's answer to the joiner's nonce: proves it knows the secret, for this certificate. */
export function serverProof(secret: Uint8Array, t: JoinTranscript): Uint8Array {
  return new Uint8Array(createHmac('sha256', secret).update('server\n').update(transcriptDigest(t)).digest());
}

/** The joiner's proof: the same transcript plus the keys its certificate will bind. */
export function clientProof(secret: Uint8Array, t: JoinTranscript, libp2pPublicKey: Uint8Array, tlsPublicKey: Uint8Array): Uint8Array {
  const keys = digestOf('keys', [libp2pPublicKey, tlsPublicKey]);
  return new Uint8Array(createHmac('sha256', secret).update('client\n').update(transcriptDigest(t)).update(keys).digest());
}

export function proofsEqual(presented: Uint8Array, expected: Uint8Array): boolean {
  return presented.length === expected.length && timingSafeEqual(presented, expected);
}
