// Canonical byte strings for signatures: a domain label, then each field as
// a type tag, a 4-byte big-endian length and its bytes. Unambiguous (no two
// field lists give the same bytes) and independent of protobuf encoding, so a
// signature survives any re-encoding of the message that carries it.

export type CanonicalField = string | number | boolean | Uint8Array;

const encoder = new TextEncoder();
const TAG = { string: 1, number: 2, boolean: 3, bytes: 4 } as const;

export function canonicalBytes(domain: string, fields: readonly CanonicalField[]): Uint8Array {
  const parts: Uint8Array[] = [encodeField(domain)];
  for (const field of fields) parts.push(encodeField(field));
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

function encodeField(field: CanonicalField): Uint8Array {
  if (field instanceof Uint8Array) return framed(TAG.bytes, field);
  if (typeof field === 'string') return framed(TAG.string, encoder.encode(field));
  if (typeof field === 'boolean') return framed(TAG.boolean, Uint8Array.of(field ? 1 : 0));
  // Integers only (versions, times, ports): decimal keeps every safe integer exact.
  if (!Number.isSafeInteger(field)) throw new RangeError(`cannot sign the non-integer ${field}`);
  return framed(TAG.number, encoder.encode(String(field)));
}

function framed(tag: number, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(5 + body.length);
  out[0] = tag;
  new DataView(out.buffer).setUint32(1, body.length);
  out.set(body, 5);
  return out;
}
