// Checks that a member record's certificate was issued by the cluster CA and
// binds exactly the node ID and peer ID the record claims. Verification costs
// an ECDSA operation, so results are cached per (node ID, certificate). The
// cache is bounded: records come from gossip and sync, and a member could
// otherwise grow it without limit with certificates that fail.
import { createHash } from 'node:crypto';
import { verifyNodeCertificate } from '../../controlplane/security/certificates.ts';
import type { MemberRecord } from '../../controlplane/cluster/roster.ts';

/** Far more than any cluster's members; each entry is ~200 bytes. */
export const MAX_CACHED_VERDICTS = 4096;

export class RecordVerifier {
  readonly #ca: Uint8Array;
  readonly #verified = new Map<string, boolean>();

  constructor(caCertificate: Uint8Array) {
    this.#ca = caCertificate;
  }

  async verify(record: MemberRecord): Promise<string | undefined> {
    const key = record.nodeId + ':' + record.peerId + ':' + createHash('sha256').update(record.certificate).digest('hex');
    const cached = this.#verified.get(key);
    if (cached !== undefined) return cached ? undefined : `certificate of ${record.nodeId} is not valid for this cluster`;
    try {
      const claims = await verifyNodeCertificate(record.certificate, this.#ca, new Date());
      const ok = claims.nodeId === record.nodeId && claims.peerId === record.peerId;
      this.#remember(key, ok);
      return ok ? undefined : `certificate of ${record.nodeId} binds a different node or peer ID`;
    } catch (error) {
      this.#remember(key, false);
      return (error as Error).message;
    }
  }

  /** How many verdicts are cached (tests). */
  get cached(): number {
    return this.#verified.size;
  }

  #remember(key: string, ok: boolean): void {
    // The oldest verdict goes first (a Map keeps insertion order); it is only recomputed if asked again.
    if (this.#verified.size >= MAX_CACHED_VERDICTS) this.#verified.delete(this.#verified.keys().next().value!);
    this.#verified.set(key, ok);
  }
}
