// Seals and opens SWIM datagrams (swim-udp.ts), memberlist-style: one UDP
// datagram per ping, ack or ping-req instead of a libp2p stream per packet.
// Two layers, because they stop different people:
// - ChaCha20-Poly1305 under a key derived from the cluster PSK: hosts outside
//   the cluster can neither read a datagram nor make one that opens (the PSK
//   is what already keeps them off the TCP transport);
// - an ed25519 signature by the sender's node key over sender, recipient and
//   payload: a holder of the PSK (a removed member keeps it) still cannot
//   speak for another member, and only active members' keys are accepted.
//   The recipient is signed but not sent (it checks with its own ID), so a
//   datagram replayed to another member fails the signature check.
// Opening is pure computation; nothing here throws on hostile input except
// with a DatagramError naming what was wrong.
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';

const VERSION = 1;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const ID_BYTES = 16;
const SIGNATURE_BYTES = 64;
const HEADER_BYTES = 1 + NONCE_BYTES;
/** Sealing overhead on top of the SWIM packet. */
export const DATAGRAM_OVERHEAD_BYTES = HEADER_BYTES + ID_BYTES + SIGNATURE_BYTES + TAG_BYTES;
/**
 * Largest datagram sent or accepted. Membership keeps a packet within
 * messageBudgetBytes (1400) and sealing adds ~110 bytes; anything larger goes
 * over a libp2p stream instead (swim-transport.ts), and a larger datagram is
 * refused unread.
 */
export const MAX_DATAGRAM_BYTES = 2048;
const DOMAIN = new TextEncoder().encode('weft/swim/udp/1\0');
const NODE_ID = /^[0-9a-f]{32}$/;

export class DatagramError extends Error {
  readonly reason: DropReason;
  constructor(reason: DropReason, message: string) {
    super(message);
    this.reason = reason;
  }
}

export type DropReason = 'oversized' | 'undecryptable' | 'badSignature' | 'badPacket' | 'notMember';

/** The datagram key: never the PSK itself, so the two uses cannot be confused. */
export function datagramKey(psk: Uint8Array): Buffer {
  return Buffer.from(hkdfSync('sha256', psk, new Uint8Array(0), 'weft swim datagram key v1', 32));
}

/** What the sender signs: the recipient is bound in, so a datagram cannot be replayed to another member. */
export function signedBytes(sender: string, recipient: string, payload: Uint8Array): Uint8Array {
  return Buffer.concat([DOMAIN, idBytes(sender), idBytes(recipient), payload]);
}

export interface SealInput {
  key: Buffer;
  sender: string;
  recipient: string;
  payload: Uint8Array;
  sign: (bytes: Uint8Array) => Uint8Array;
}

export function sealDatagram({ key, sender, recipient, payload, sign }: SealInput): Buffer {
  const signature = sign(signedBytes(sender, recipient, payload));
  if (signature.length !== SIGNATURE_BYTES) throw new Error(`node signatures are ${SIGNATURE_BYTES} bytes, got ${signature.length}`);
  const header = Buffer.concat([Buffer.of(VERSION), randomBytes(NONCE_BYTES)]);
  const plain = Buffer.concat([idBytes(sender), signature, payload]);
  const cipher = createCipheriv('chacha20-poly1305', key, header.subarray(1), { authTagLength: TAG_BYTES });
  cipher.setAAD(header, { plaintextLength: plain.length });
  const body = Buffer.concat([cipher.update(plain), cipher.final()]);
  return Buffer.concat([header, body, cipher.getAuthTag()]);
}

export interface OpenedDatagram {
  sender: string;
  payload: Uint8Array;
}

/**
 * Opens a datagram addressed to `self`; `verify` checks the signature with
 * the key of an active member (false for anyone else).
 */
export function openDatagram(
  key: Buffer,
  self: string,
  datagram: Uint8Array,
  verify: (sender: string, bytes: Uint8Array, signature: Uint8Array) => boolean,
): OpenedDatagram {
  if (datagram.length > MAX_DATAGRAM_BYTES) throw new DatagramError('oversized', `datagram of ${datagram.length} bytes exceeds ${MAX_DATAGRAM_BYTES}`);
  if (datagram.length < DATAGRAM_OVERHEAD_BYTES) throw new DatagramError('undecryptable', `datagram of ${datagram.length} bytes is shorter than its envelope`);
  if (datagram[0] !== VERSION) throw new DatagramError('undecryptable', `datagram version ${datagram[0]} is not ${VERSION}`);
  const plain = decrypt(key, Buffer.from(datagram.buffer, datagram.byteOffset, datagram.byteLength));
  const sender = plain.subarray(0, ID_BYTES).toString('hex');
  const signature = plain.subarray(ID_BYTES, ID_BYTES + SIGNATURE_BYTES);
  const payload = plain.subarray(ID_BYTES + SIGNATURE_BYTES);
  if (!verify(sender, signedBytes(sender, self, payload), signature)) {
    throw new DatagramError('badSignature', `datagram from ${sender} is not signed by an active member's key, or not for this node`);
  }
  return { sender, payload };
}

function decrypt(key: Buffer, datagram: Buffer): Buffer {
  const header = datagram.subarray(0, HEADER_BYTES);
  const tag = datagram.subarray(datagram.length - TAG_BYTES);
  try {
    const decipher = createDecipheriv('chacha20-poly1305', key, header.subarray(1), { authTagLength: TAG_BYTES });
    const body = datagram.subarray(HEADER_BYTES, datagram.length - TAG_BYTES);
    decipher.setAAD(header, { plaintextLength: body.length });
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(body), decipher.final()]);
  } catch {
    throw new DatagramError('undecryptable', 'datagram does not open with the cluster key (another cluster, or tampered with)');
  }
}

function idBytes(nodeId: string): Buffer {
  if (!NODE_ID.test(nodeId)) throw new Error(`node ID ${JSON.stringify(nodeId)} is not 32 lower-case hex characters`);
  return Buffer.from(nodeId, 'hex');
}
