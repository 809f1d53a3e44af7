// Who may raise a member's incarnation. Only the member itself does, when it
// refutes or leaves, so it signs (node, incarnation, address) with its node key each
// time; every claim that names a new incarnation must carry that signature,
// whoever relays it. Without it a member could push another's incarnation to
// the ceiling in ~4,000 bounded claims, after which that member can never
// refute again. Signing and verifying are injected (agent/cluster/owner-keys.ts
// in the agent; the simulator accepts everything), so this file stays pure.
import { canonicalBytes } from '../security/canonical.ts';

export interface ClaimSigning {
  /** Our own signature of `payload` (from incarnationPayload). */
  sign: (payload: Uint8Array) => Uint8Array;
  /** True when `signature` is `node`'s signature of `payload`. */
  verify: (node: string, payload: Uint8Array, signature: Uint8Array) => boolean;
}

/**
 * The address is signed too: the transport reaches a member at the address
 * its alive claim gives (with its peer ID), so a relay that could swap it
 * would send the member's probes to a peer of its choosing, which could ack
 * for a crashed member.
 */
export function incarnationPayload(node: string, incarnation: number, address: string): Uint8Array {
  return canonicalBytes('weft/swim-incarnation/1', [node, incarnation, address]);
}

/**
 * For hosts without node keys (the simulator, unit tests of the protocol):
 * signs nothing and accepts every claim, i.e. the protocol as it was.
 */
export const UNSIGNED_CLAIMS: ClaimSigning = Object.freeze({
  sign: () => new Uint8Array(0),
  verify: () => true,
});

const EMPTY = new Uint8Array(0);

/** The highest incarnation we hold on good authority for one member, and its address then. */
export interface Vouched {
  incarnation: number;
  address: string;
  /** The member's signature of both; empty when the host seeded them (addMember). */
  signature: Uint8Array;
}

/**
 * Remembers, per member, the highest incarnation that member signed (or the
 * host vouched for), which doubles as the verdict cache: a claim at or below
 * it needs no verification, so a claim gossiped many times costs one
 * ed25519 verification per (node, incarnation), not one per copy.
 */
export class SignedIncarnations {
  readonly #claims: ClaimSigning;
  readonly #vouched = new Map<string, Vouched>();
  /** Verifications performed (for tests and benchmarks). */
  verifications = 0;
  // A sender that relays one forged claim gets no more verifications for the
  // rest of its message: 512 forged claims would otherwise cost ~70 ms.
  #failedInBatch = false;

  constructor(claims: ClaimSigning) {
    this.#claims = claims;
  }

  get(node: string): Vouched | undefined {
    return this.#vouched.get(node);
  }

  /** Our own incarnation and address: signed once, when they change. */
  signOwn(node: string, incarnation: number, address: string): Vouched {
    const held = this.#vouched.get(node);
    if (held !== undefined && held.incarnation === incarnation && held.address === address) return held;
    const vouched = { incarnation, address, signature: this.#claims.sign(incarnationPayload(node, incarnation, address)) };
    this.#vouched.set(node, vouched);
    return vouched;
  }

  /** The host learned the member out of band (certificate-checked roster): trust that incarnation. */
  seed(node: string, incarnation: number, address: string): void {
    const held = this.#vouched.get(node);
    if (held === undefined || held.incarnation < incarnation) this.#vouched.set(node, { incarnation, address, signature: EMPTY });
  }

  /**
   * An accusation: true when `node` has signed `incarnation` (or higher):
   * either we hold that already, or `signature` proves it (over the claim's
   * address), which we then remember.
   */
  admits(node: string, incarnation: number, address: string, signature: Uint8Array | undefined): boolean {
    const held = this.#vouched.get(node);
    if (held !== undefined && incarnation <= held.incarnation) return true;
    return this.#verifyNew(node, incarnation, address, signature);
  }

  /** An alive claim speaks for the member: it must be signed by it, at least once per incarnation. */
  admitsAlive(node: string, incarnation: number, address: string, signature: Uint8Array | undefined): boolean {
    const held = this.#vouched.get(node);
    if (held !== undefined && incarnation < held.incarnation) return true; // stale: the rules ignore it
    if (held !== undefined && incarnation === held.incarnation && held.signature.length > 0) {
      // The copy we verified before (the common case), or a forgery: ed25519
      // signatures are deterministic, so other bytes cannot be the member's.
      if (this.#claims === UNSIGNED_CLAIMS) return true;
      return address === held.address && signature !== undefined && sameBytes(signature, held.signature);
    }
    return this.#verifyNew(node, incarnation, address, signature);
  }

  /** A new message or snapshot starts. */
  beginBatch(): void {
    this.#failedInBatch = false;
  }

  forget(node: string): void {
    this.#vouched.delete(node);
  }

  #verifyNew(node: string, incarnation: number, address: string, signature: Uint8Array | undefined): boolean {
    if (!this.#verify(node, incarnation, address, signature)) return false;
    this.#vouched.set(node, { incarnation, address, signature: signature ?? EMPTY });
    return true;
  }

  #verify(node: string, incarnation: number, address: string, signature: Uint8Array | undefined): boolean {
    if (this.#claims === UNSIGNED_CLAIMS) return true;
    if (signature === undefined || signature.length === 0 || this.#failedInBatch) return false;
    this.verifications++;
    const valid = this.#claims.verify(node, incarnationPayload(node, incarnation, address), signature);
    if (!valid) this.#failedInBatch = true;
    return valid;
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
