// The envelope of the agent's state files: a header naming the format, a
// SHA-256 of the payload, then the payload. Files are replaced atomically and
// fsynced (files.ts), so a torn write should never be seen; the checksum is
// what turns the rest (a zero-length file after a crash on a file system
// that reorders, a truncated copy, a flipped bit) into a refusal to start
// rather than state silently reset to nothing: an empty protobuf decodes as
// a valid, empty message, and a Lamport clock read as 0 would make every
// later local write lose to this node's own older ones.
import { createHash } from 'node:crypto';

const HEADER = Buffer.from('weft-state 1\n', 'ascii');
const DIGEST_BYTES = 32;

export class CorruptStateError extends Error {
  override name = 'CorruptStateError';
}

export function seal(payload: Uint8Array): Uint8Array {
  return Buffer.concat([HEADER, createHash('sha256').update(payload).digest(), payload]);
}

/** True when the file starts with the envelope's header (older agents wrote bare payloads). */
export function isSealed(data: Uint8Array): boolean {
  return data.length >= HEADER.length && Buffer.from(data.subarray(0, HEADER.length)).equals(HEADER);
}

/** The payload; CorruptStateError naming the file, why, and what to do about it. */
export function unseal(data: Uint8Array, path: string, remedy: string): Uint8Array {
  if (!isSealed(data)) throw corrupt(path, data.length === 0 ? 'it is empty' : 'it does not start with the weft-state header', remedy);
  if (data.length < HEADER.length + DIGEST_BYTES) throw corrupt(path, 'it is truncated', remedy);
  const digest = data.subarray(HEADER.length, HEADER.length + DIGEST_BYTES);
  const payload = data.subarray(HEADER.length + DIGEST_BYTES);
  if (!createHash('sha256').update(payload).digest().equals(digest)) throw corrupt(path, 'its checksum does not match (truncated or damaged)', remedy);
  return new Uint8Array(payload);
}

export function corrupt(path: string, why: string, remedy: string): CorruptStateError {
  return new CorruptStateError(`state file ${path} is corrupt: ${why}. The agent will not start on it rather than silently lose state; ${remedy}`);
}
