// The join-token secret is cluster state: any member can admit a host, so every
// member must know the current secret. Rotation is last-writer-wins by
// (version, changedBy), so concurrent rotations settle on one secret everywhere.

export interface TokenRecord {
  secret: Uint8Array;
  version: number;
  changedBy: string;
}

export function newerToken(candidate: TokenRecord, current: TokenRecord | undefined): boolean {
  if (current === undefined) return true;
  if (candidate.version !== current.version) return candidate.version > current.version;
  return candidate.changedBy > current.changedBy;
}

export function rotatedToken(current: TokenRecord, secret: Uint8Array, by: string): TokenRecord {
  return { secret, version: current.version + 1, changedBy: by };
}
