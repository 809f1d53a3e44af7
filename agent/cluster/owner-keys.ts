// Owner signatures with the node's ed25519 libp2p key: the key whose peer ID
// the node certificate binds to the node ID (record-verifier.ts checks that
// binding before a record enters the roster). Signing a table entry or a
// member record once, when it is written, lets every holder prove who wrote
// it, whoever relays it. node:crypto's ed25519 costs tens of microseconds per
// operation; public keys are parsed once per peer and kept in a bounded cache.
import { createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { peerIdFromString } from '@libp2p/peer-id';
import type { PrivateKey } from '@libp2p/interface';
import type { MemberRecord } from '../../controlplane/cluster/roster.ts';
import { signedRecordFields } from '../../controlplane/cluster/record-signing.ts';

// DER prefixes that wrap a raw ed25519 seed (PKCS#8) and public key (SPKI).
const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
const SPKI_ED25519_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
const MAX_CACHED_KEYS = 4096;

export class OwnerKeys {
  readonly #privateKey: KeyObject;
  readonly #publicKeys = new Map<string, KeyObject | null>();

  constructor(libp2pKey: PrivateKey) {
    if (libp2pKey.type !== 'Ed25519') throw new Error(`owner signatures need an Ed25519 libp2p key, not ${libp2pKey.type}`);
    // libp2p's raw ed25519 private key is seed (32 bytes) followed by the public key.
    const seed = libp2pKey.raw.subarray(0, 32);
    this.#privateKey = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, seed]), format: 'der', type: 'pkcs8' });
  }

  sign(payload: Uint8Array): Uint8Array {
    return new Uint8Array(sign(null, payload, this.#privateKey));
  }

  /** `record` as written by this node: its signed fields (record-signing.ts) signed, any old signature replaced. */
  signRecord(record: MemberRecord): MemberRecord {
    const unsigned: MemberRecord = { ...record };
    delete unsigned.signature;
    return { ...unsigned, signature: this.sign(signedRecordFields(unsigned)) };
  }

  /** True when `signature` is the signature of `payload` by the key behind `peerId`. */
  verifyByPeer(peerId: string, payload: Uint8Array, signature: Uint8Array): boolean {
    const key = this.#publicKeyOf(peerId);
    if (key === null) return false;
    try {
      return verify(null, payload, key, signature);
    } catch {
      return false;
    }
  }

  #publicKeyOf(peerId: string): KeyObject | null {
    const cached = this.#publicKeys.get(peerId);
    if (cached !== undefined) return cached;
    let key: KeyObject | null = null;
    try {
      const publicKey = peerIdFromString(peerId).publicKey;
      if (publicKey?.type === 'Ed25519') key = createPublicKey({ key: Buffer.concat([SPKI_ED25519_PREFIX, publicKey.raw]), format: 'der', type: 'spki' });
    } catch {
      key = null;
    }
    // Bounded: the oldest entry goes first (Map keeps insertion order).
    if (this.#publicKeys.size >= MAX_CACHED_KEYS) this.#publicKeys.delete(this.#publicKeys.keys().next().value!);
    this.#publicKeys.set(peerId, key);
    return key;
  }
}
