import { createHash, timingSafeEqual } from 'node:crypto';

/**
 * Compares two secrets in constant time. Both sides are hashed first so that
 * the comparison time does not even reveal the length of the expected secret.
 */
export function secretsEqual(presented: Uint8Array, expected: Uint8Array): boolean {
  const a = createHash('sha256').update(presented).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}
