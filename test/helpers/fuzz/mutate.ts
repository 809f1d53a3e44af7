// Input mutators shared by every fuzz target. Three kinds:
//   bytes    flips, interesting bytes, inserts, deletes, duplicated runs, truncation
//   protobuf structure-aware: the frame is split into its protobuf fields
//            (the wire format: tag, wire type, value), one field (at any depth
//            of nested messages) gets a hostile value of its wire type, is
//            dropped, repeated, renumbered or given another wire type, and the
//            frame is put back together, so the rest of it stays valid
//   random   bytes with no structure at all
// The protobuf splitter is deliberately schema-free: it works on every frame
// of every .proto (and on frames of fields that do not exist yet), and a
// change of the schema (new fields, signatures) needs no change here.
import type { Random } from './random.ts';

/** Inputs stay under a megabyte: the codecs' own size caps are tested by explicit tests, not by noise. */
export const MAX_INPUT_BYTES = 1 << 20;

const INTERESTING_BYTES = [0x00, 0x01, 0x7f, 0x80, 0xff, 0xc0, 0x3f, 0x40, 0x2e, 0x20];

/** Varints that sit on a limit somewhere: 7-bit boundaries, int32/uint32/2^53/int64 edges. */
const INTERESTING_VARINTS: bigint[] = [
  0n, 1n, 2n, 0x7fn, 0x80n, 0xffn, 0x3fffn, 0x4000n, 0xffffn, 0x10000n, 0x7fffffffn, 0x80000000n,
  0xffffffffn, 0x100000000n, 2n ** 53n - 1n, 2n ** 53n, 2n ** 53n + 1n, 2n ** 63n - 1n, 2n ** 63n, 2n ** 64n - 1n,
];

const TEXT = new TextEncoder();
const INTERESTING_STRINGS: Uint8Array[] = [
  '', ' ', '0', '-1', 'a', 'A'.repeat(63), 'a'.repeat(64), 'x'.repeat(300), 'f'.repeat(32), 'F'.repeat(32), '0'.repeat(31),
  '0.0.0.0', '255.255.255.255', '198.18.0.1', '198.18.0.256', '1.2.3', '::1', '100.64.0.0/10', '0.0.0.0/0', '1.2.3.4/33',
  'active', 'left', 'revoked', 'alive', 'dead', 'vip', 'dnsrr', 'tcp', 'udp', 'http', '../../etc/passwd', '/', '%s%n',
  '\u0000', 'a\u0000b', '\u00e9', '\u{1f600}', '\ud800', '__proto__', 'constructor', 'toString', 'endpoints/', 'networks',
].map((s) => TEXT.encode(s));
const INVALID_UTF8 = [new Uint8Array([0xff]), new Uint8Array([0xc3]), new Uint8Array([0xed, 0xa0, 0x80]), new Uint8Array([0xf4, 0x90, 0x80, 0x80])];

// ---------------------------------------------------------------- bytes

export function mutateBytes(seed: Uint8Array, random: Random): Uint8Array {
  let out: Uint8Array = Uint8Array.from(seed);
  const rounds = 1 + random.int(4);
  for (let r = 0; r < rounds; r++) out = byteOp(out, random);
  return out;
}

function byteOp(data: Uint8Array, random: Random): Uint8Array {
  const at = data.length === 0 ? 0 : random.int(data.length);
  switch (random.int(8)) {
    case 0: {
      const out = Uint8Array.from(data);
      if (out.length > 0) out[at] = out[at]! ^ (1 << random.int(8));
      return out;
    }
    case 1: {
      const out = Uint8Array.from(data);
      if (out.length > 0) out[at] = random.pick(INTERESTING_BYTES);
      return out;
    }
    case 2:
      return concat(data.subarray(0, at), random.bytes(1 + random.int(8)), data.subarray(at));
    case 3:
      return concat(data.subarray(0, at), data.subarray(Math.min(data.length, at + 1 + random.int(16))));
    case 4: {
      const end = Math.min(data.length, at + 1 + random.int(64));
      const copies = Math.min(random.chance(0.1) ? 1 + random.int(200) : 1, Math.floor(MAX_INPUT_BYTES / (end - at + 1)));
      return concat(data.subarray(0, end), ...Array.from({ length: copies }, () => data.subarray(at, end)), data.subarray(end));
    }
    case 5:
      return data.subarray(0, at);
    case 6: {
      const out = Uint8Array.from(data);
      const value = random.pick([0xffff, 0x7fff, 0x8000, 0, 1]);
      if (at + 1 < out.length) {
        out[at] = value >> 8;
        out[at + 1] = value & 0xff;
      }
      return out;
    }
    default: {
      const out = Uint8Array.from(data);
      for (let i = 0; i < 1 + random.int(8) && out.length > 0; i++) out[random.int(out.length)] = random.int(256);
      return out;
    }
  }
}

export function truncate(seed: Uint8Array, random: Random): Uint8Array {
  return seed.subarray(0, random.int(seed.length + 1));
}

export function randomBytes(random: Random, max = 1024): Uint8Array {
  return random.bytes(random.size(max));
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

// ---------------------------------------------------------------- protobuf

interface Field {
  number: number;
  wireType: number;
  /** The value as on the wire: varint bytes, 8 or 4 fixed bytes, or the length-delimited payload. */
  value: Uint8Array;
}

function readVarint(data: Uint8Array, at: number): { value: bigint; next: number } | undefined {
  let value = 0n;
  for (let i = 0; i < 10; i++) {
    if (at + i >= data.length) return undefined;
    const b = data[at + i]!;
    value |= BigInt(b & 0x7f) << BigInt(7 * i);
    if ((b & 0x80) === 0) return { value, next: at + i + 1 };
  }
  return undefined;
}

export function encodeVarint(value: bigint): Uint8Array {
  const out: number[] = [];
  let v = BigInt.asUintN(64, value);
  do {
    const b = Number(v & 0x7fn);
    v >>= 7n;
    out.push(v === 0n ? b : b | 0x80);
  } while (v !== 0n);
  return Uint8Array.from(out);
}

/** The frame's top-level fields, or undefined when it is not a clean protobuf message. */
export function splitFields(data: Uint8Array): Field[] | undefined {
  const fields: Field[] = [];
  let at = 0;
  while (at < data.length) {
    const tag = readVarint(data, at);
    if (!tag || tag.value >> 3n === 0n || tag.value > 0xffffffffn) return undefined;
    const wireType = Number(tag.value & 7n);
    const number = Number(tag.value >> 3n);
    at = tag.next;
    if (wireType === 0) {
      const v = readVarint(data, at);
      if (!v) return undefined;
      fields.push({ number, wireType, value: data.subarray(at, v.next) });
      at = v.next;
    } else if (wireType === 1 || wireType === 5) {
      const n = wireType === 1 ? 8 : 4;
      if (at + n > data.length) return undefined;
      fields.push({ number, wireType, value: data.subarray(at, at + n) });
      at += n;
    } else if (wireType === 2) {
      const len = readVarint(data, at);
      if (!len || len.next + Number(len.value) > data.length) return undefined;
      fields.push({ number, wireType, value: data.subarray(len.next, len.next + Number(len.value)) });
      at = len.next + Number(len.value);
    } else return undefined;
  }
  return fields;
}

export function joinFields(fields: readonly Field[]): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const f of fields) {
    parts.push(encodeVarint((BigInt(f.number) << 3n) | BigInt(f.wireType)));
    if (f.wireType === 2) parts.push(encodeVarint(BigInt(f.value.length)));
    parts.push(f.value);
  }
  return concat(...parts);
}

/** One field, somewhere in the message tree, changed; everything else as it was. */
export function mutateProtobuf(frame: Uint8Array, random: Random, depth = 0): Uint8Array {
  const fields = splitFields(frame);
  if (!fields || fields.length === 0) return mutateBytes(frame, random);
  const index = random.int(fields.length);
  const field = fields[index]!;
  // Descend into a nested message (or a message carried as bytes) most of the time.
  if (field.wireType === 2 && depth < 6 && random.chance(0.6)) {
    const inner = splitFields(field.value);
    if (inner && inner.length > 0) return replaceAt(fields, index, { ...field, value: mutateProtobuf(field.value, random, depth + 1) });
  }
  switch (random.int(10)) {
    case 0:
      return joinFields(fields.filter((_, i) => i !== index));
    case 1: {
      // Many copies of a repeated field, up to about MAX_INPUT_BYTES in all.
      const room = Math.max(1, Math.floor((MAX_INPUT_BYTES - frame.length) / (field.value.length + 6)));
      const copies = Math.min(room, random.chance(0.2) ? 2 + random.int(1000) : 1);
      return joinFields([...fields.slice(0, index + 1), ...Array.from({ length: copies }, () => field), ...fields.slice(index + 1)]);
    }
    case 2:
      return replaceAt(fields, index, { ...field, number: random.pick([field.number + 1, 1 + random.int(20), 536_870_911]) });
    case 3:
      return replaceAt(fields, index, { ...field, wireType: random.pick([0, 1, 2, 5].filter((w) => w !== field.wireType)) });
    default:
      return replaceAt(fields, index, { ...field, value: hostileValue(field, random) });
  }
}

function replaceAt(fields: readonly Field[], index: number, field: Field): Uint8Array {
  return joinFields(fields.map((f, i) => (i === index ? field : f)));
}

function hostileValue(field: Field, random: Random): Uint8Array {
  switch (field.wireType) {
    case 0: {
      if (random.chance(0.7)) return encodeVarint(random.pick(INTERESTING_VARINTS));
      const current = readVarint(field.value, 0)?.value ?? 0n;
      return encodeVarint(current + BigInt(random.pick([-1, 1, -2, 2, 1000])));
    }
    case 1:
    case 5:
      return random.chance(0.5) ? new Uint8Array(field.value.length).fill(0xff) : random.bytes(field.value.length);
    default:
      return hostilePayload(field.value, random);
  }
}

function hostilePayload(value: Uint8Array, random: Random): Uint8Array {
  switch (random.int(7)) {
    case 0:
      return random.pick(INTERESTING_STRINGS);
    case 1:
      return concat(value, random.pick(INVALID_UTF8));
    case 2:
      return mutateBytes(value, random);
    case 3:
      return value.subarray(0, random.int(value.length + 1));
    case 4:
      return new Uint8Array(random.pick([1, 32, 33, 255, 256, 4096, 8192, 65_537]));
    case 5:
      return concat(value, value);
    default:
      return random.bytes(random.size(256));
  }
}
