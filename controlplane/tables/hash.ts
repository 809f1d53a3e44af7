// A 64-bit fingerprint of one entry version, for anti-entropy digests.
//
// Digests XOR the fingerprints of all entries in a bucket, so a bucket's
// digest can be kept up to date in O(1) per write instead of being recomputed
// on every sync round. XOR is safe here because a bucket never holds two
// versions of the same key. The hash is not cryptographic: peers are
// authenticated and an owner can only hurt its own entries, so it has to
// avoid accidental collisions, not adversarial ones. It is plain JavaScript
// (two multiply-xorshift lanes, cyrb53's mixing) rather than node:crypto
// because the simulator computes millions of them and a native call per
// entry costs more than the hashing.

import type { Versioned } from './entry.ts';

export interface Fingerprint {
  hi: number;
  lo: number;
}

export const EMPTY_FINGERPRINT: Fingerprint = { hi: 0, lo: 0 };

class Lanes {
  h1 = 0xdeadbeef;
  h2 = 0x41c6ce57;

  push(unit: number): void {
    this.h1 = Math.imul(this.h1 ^ unit, 2654435761);
    this.h2 = Math.imul(this.h2 ^ unit, 1597334677);
  }

  pushString(s: string): void {
    // Length first, so that ("ab","c") and ("a","bc") hash differently.
    this.push(s.length);
    for (let i = 0; i < s.length; i++) this.push(s.charCodeAt(i));
  }

  finish(): Fingerprint {
    let { h1, h2 } = this;
    h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
    h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
    return { hi: h1 >>> 0, lo: h2 >>> 0 };
  }
}

export function fingerprint(e: Versioned): Fingerprint {
  const lanes = new Lanes();
  lanes.pushString(e.table);
  lanes.pushString(e.key);
  lanes.pushString(e.owner);
  lanes.push(e.lamport % 0x1_0000_0000);
  lanes.push(Math.floor(e.lamport / 0x1_0000_0000));
  lanes.push(e.deleted ? 1 : 0);
  lanes.push(e.value.length);
  for (const byte of e.value) lanes.push(byte);
  return lanes.finish();
}

export function xorFingerprints(a: Fingerprint, b: Fingerprint): Fingerprint {
  return { hi: (a.hi ^ b.hi) >>> 0, lo: (a.lo ^ b.lo) >>> 0 };
}

/** 16 hex digits: a string maps to protobuf without 64-bit integer handling. */
export function fingerprintHex(f: Fingerprint): string {
  return f.hi.toString(16).padStart(8, '0') + f.lo.toString(16).padStart(8, '0');
}
