// Checks that a member record's certificate was issued by the cluster CA and
// binds exactly the node ID and peer ID the record claims. Verification costs
// an ECDSA operation, so results are cached per (node ID, certificate).
import { createHash } from 'node:crypto';
import { verifyNodeCertificate } from '../../controlplane/security/certificates.ts';
import type { MemberRecord } from '../../controlplane/cluster/roster.ts';

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
      this.#verified.set(key, ok);
      return ok ? undefined : `certificate of ${record.nodeId} binds a different node or peer ID`;
    } catch (error) {
      this.#verified.set(key, false);
      return (error as Error).message;
    }
  }
}
