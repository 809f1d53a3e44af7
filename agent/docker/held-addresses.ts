// The endpoint addresses Docker's IPAM holds through weft (DockerState.addresses)
// and how each is released exactly once: forgotten and saved before the
// allocator frees it, so a crash in between leaks one address rather than
// freeing one twice. An address can also be held with nothing using it: the
// answer to RequestAddress was lost (Docker's plugin client timed out and
// retried with an empty body, see docs/containers.md) or Docker's
// ReleaseAddress never arrived (the agent was down). Such orphans are released
// once they have been unused for a grace period.
import type { Overlay } from '../overlay/overlay.ts';
import { DockerState } from './docker-state.ts';

/**
 * How long an address may be held by no endpoint. Docker sends CreateEndpoint
 * right after RequestAddress and ReleaseAddress right after DeleteEndpoint;
 * its plugin client retries one call for about 30 s, so minutes are plenty.
 */
export const ORPHAN_GRACE_MS = 5 * 60_000;

/** Forgets and frees a held address; false (and nothing done) when it is not held. */
export async function releaseHeldAddress(overlay: Overlay, state: DockerState, networkId: string, ip: string): Promise<boolean> {
  if (!state.addresses.delete(DockerState.addressKey(networkId, ip))) return false;
  state.save();
  await overlay.containerLinks.freeAddress(networkId, ip);
  return true;
}

/** Tracks since when each held address has been used by no endpoint (in memory: a restart starts the grace over). */
export class OrphanAddresses {
  readonly #graceMs: number;
  readonly #unusedSince = new Map<string, number>();

  constructor(graceMs = ORPHAN_GRACE_MS) {
    this.#graceMs = graceMs;
  }

  /** The held addresses no endpoint has used for the whole grace period, as [network ID, ip]. */
  due(state: DockerState, now: number): Array<[string, string]> {
    const used = new Set([...state.endpoints.values()].map((e) => DockerState.addressKey(e.networkId, e.ip)));
    for (const key of [...this.#unusedSince.keys()]) if (!state.addresses.has(key) || used.has(key)) this.#unusedSince.delete(key);
    const due: Array<[string, string]> = [];
    for (const key of state.addresses) {
      if (used.has(key)) continue;
      const since = this.#unusedSince.get(key);
      if (since === undefined) this.#unusedSince.set(key, now);
      else if (now - since >= this.#graceMs) due.push(splitKey(key));
    }
    return due;
  }
}

function splitKey(key: string): [string, string] {
  const space = key.indexOf(' ');
  return [key.slice(0, space), key.slice(space + 1)];
}
