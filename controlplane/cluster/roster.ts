// The roster: which hosts hold a valid node certificate and may take part in
// the cluster. It answers "who is admitted" (the connection gater, gossip
// validation) while liveness (alive/suspect/dead) is membership's business.
// Records are merged last-writer-wins; revocation is terminal so that a
// revoked node can never re-admit itself by publishing a newer version.

export type MemberStatus = 'active' | 'left' | 'revoked';

export interface MemberRecord {
  nodeId: string;
  name: string;
  peerId: string;
  address: string;
  gossipPort: number;
  admissionPort: number;
  certificate: Uint8Array;
  version: number;
  status: MemberStatus;
  changedBy: string;
  /** changedBy's signature over signedRecordFields() (record-signing.ts); absent on records of older agents. */
  signature?: Uint8Array;
}

export type MergeOutcome = 'added' | 'updated' | 'ignored';

/**
 * How far a received record's version may run ahead of the one held (0 for
 * an unknown node). Versions grow by one per change of a record (admission
 * writes 1), so honest jumps are tiny; a forged record at 2^53 would
 * otherwise win every later comparison and leave no room for a newer one.
 */
export const MAX_VERSION_JUMP = 2 ** 20;

/** Why a received record's version is refused, given the one held; undefined when plausible. */
export function implausibleVersion(version: number, held: number | undefined): string | undefined {
  if (!Number.isSafeInteger(version) || version > (held ?? 0) + MAX_VERSION_JUMP) return `version ${version} runs more than ${MAX_VERSION_JUMP} ahead of ${held ?? 0}`;
  return undefined;
}

/** The fields that order versions of a record; a sync exchanges these before whole records. */
export type MemberSummary = Pick<MemberRecord, 'nodeId' | 'version' | 'status' | 'changedBy'>;

export function summaryOf(record: MemberRecord): MemberSummary {
  return { nodeId: record.nodeId, version: record.version, status: record.status, changedBy: record.changedBy };
}

/** Records of ours that a peer with this summary lacks or holds in an older version. */
export function recordsNewerThan(records: readonly MemberRecord[], theirs: readonly MemberSummary[]): MemberRecord[] {
  const known = new Map(theirs.map((s) => [s.nodeId, s]));
  return records.filter((r) => {
    const other = known.get(r.nodeId);
    return other === undefined || compareRecords(r, other) > 0;
  });
}

const STATUS_RANK: Record<MemberStatus, number> = { active: 0, left: 1, revoked: 2 };

/** Positive when `a` should replace `b`. */
export function compareRecords(a: MemberSummary, b: MemberSummary): number {
  if (a.status === 'revoked' || b.status === 'revoked') {
    return STATUS_RANK[a.status] - STATUS_RANK[b.status] || tieBreak(a, b);
  }
  return a.version - b.version || STATUS_RANK[a.status] - STATUS_RANK[b.status] || tieBreak(a, b);
}

function tieBreak(a: MemberSummary, b: MemberSummary): number {
  if (a.version !== b.version) return a.version - b.version;
  return a.changedBy < b.changedBy ? -1 : a.changedBy > b.changedBy ? 1 : 0;
}

export class Roster {
  readonly #records = new Map<string, MemberRecord>();
  readonly #listeners = new Set<(record: MemberRecord) => void>();

  merge(record: MemberRecord): MergeOutcome {
    const current = this.#records.get(record.nodeId);
    if (current !== undefined && compareRecords(record, current) <= 0) return 'ignored';
    this.#records.set(record.nodeId, record);
    for (const listener of this.#listeners) listener(record);
    return current === undefined ? 'added' : 'updated';
  }

  /** Called after every record that changed the roster (every path merges here); returns the unsubscribe. */
  onChange(listener: (record: MemberRecord) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  get(nodeId: string): MemberRecord | undefined {
    return this.#records.get(nodeId);
  }

  all(): MemberRecord[] {
    return [...this.#records.values()];
  }

  byPeerId(peerId: string): MemberRecord | undefined {
    for (const record of this.#records.values()) if (record.peerId === peerId) return record;
    return undefined;
  }

  /** Entries a node owns count while it is active or has left; a removed node's do not. */
  admitsEntriesOf(nodeId: string): boolean {
    const status = this.get(nodeId)?.status;
    return status === 'active' || status === 'left';
  }

  /** A peer may connect and publish only while its record is active. */
  isAdmitted(peerId: string): boolean {
    return this.byPeerId(peerId)?.status === 'active';
  }

  /**
   * Is this underlay address an active member's? Consulted on every inbound
   * connection before any handshake, so that an outsider's TCP connections
   * are closed at once instead of holding libp2p's pending-upgrade slots.
   */
  isMemberAddress(address: string): boolean {
    for (const record of this.#records.values()) if (record.status === 'active' && record.address === address) return true;
    return false;
  }

  /**
   * Finds a member by node ID, unique node ID prefix or name, the way users
   * type them. Returns an error message when the reference is ambiguous.
   */
  resolve(reference: string): MemberRecord | string {
    const exact = this.#records.get(reference);
    if (exact) return exact;
    const candidates = this.all().filter((r) => r.status !== 'revoked' && (r.nodeId.startsWith(reference) || r.name === reference));
    if (candidates.length === 1 && candidates[0]) return candidates[0];
    if (candidates.length === 0) return `no member matches "${reference}"; list members with \`weft members\``;
    return `"${reference}" matches ${candidates.length} members (${candidates.map((c) => c.nodeId.slice(0, 12)).join(', ')}); give more of the node ID`;
  }
}
