// Join tokens: WEFT-1-<base32 SHA-256 of the CA certificate>-<base32 256-bit secret>.
// The digest lets a joining host pin the cluster CA before it trusts anything
// the server says; the secret proves the host was invited.
import { createHash, randomBytes } from 'node:crypto';
import { base32Decode, base32Encode } from './base32.ts';

export const TOKEN_PREFIX = 'WEFT';
export const TOKEN_VERSION = '1';
const DIGEST_BYTES = 32;
const SECRET_BYTES = 32;
const FIELD_CHARS = Math.ceil((DIGEST_BYTES * 8) / 5); // 52

export interface JoinToken {
  caDigest: Uint8Array; // SHA-256 of the CA certificate (DER)
  secret: Uint8Array;   // 32 random bytes
}

export class TokenError extends Error {
  override name = 'TokenError';
}

export function caDigestOf(caCertificateDer: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(caCertificateDer).digest());
}

export function newTokenSecret(): Uint8Array {
  return new Uint8Array(randomBytes(SECRET_BYTES));
}

export function formatToken(token: JoinToken): string {
  return [TOKEN_PREFIX, TOKEN_VERSION, base32Encode(token.caDigest), base32Encode(token.secret)].join('-');
}

const HINT = 'copy the whole token printed by `weft init` or `weft token` on a cluster member';

/** Parses a token; throws TokenError saying exactly what is wrong with it. */
export function parseToken(text: string): JoinToken {
  const trimmed = text.trim();
  const parts = trimmed.split('-');
  if (parts.length !== 4 || parts[0]?.toUpperCase() !== TOKEN_PREFIX) {
    throw new TokenError(`malformed join token: expected WEFT-1-<CA digest>-<secret>; ${HINT}`);
  }
  if (parts[1] !== TOKEN_VERSION) {
    throw new TokenError(`unsupported join token version "${parts[1]}" (this weft understands version ${TOKEN_VERSION}); ${HINT}`);
  }
  const caDigest = decodeField(parts[2] ?? '', 'CA digest', DIGEST_BYTES);
  const secret = decodeField(parts[3] ?? '', 'secret', SECRET_BYTES);
  return { caDigest, secret };
}

function decodeField(text: string, what: string, bytes: number): Uint8Array {
  if (text.length !== FIELD_CHARS) {
    throw new TokenError(`malformed join token: the ${what} has ${text.length} characters, expected ${FIELD_CHARS}; ${HINT}`);
  }
  const decoded = base32Decode(text);
  if (decoded === undefined || decoded.length !== bytes) {
    throw new TokenError(`malformed join token: the ${what} is not valid base32 (A-Z, 2-7); ${HINT}`);
  }
  return decoded;
}
