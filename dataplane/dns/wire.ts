// DNS wire helpers around dns-packet: the few header fields the server reads
// or rewrites without a full decode, the question section's bounds (to match
// upstream replies to what was asked), and replies built from a query's raw
// header (a query that does not decode still gets an answer when at least
// its header is there, as BIND and CoreDNS do).
import * as dnsPacket from 'dns-packet';

export const HEADER_BYTES = 12;
export const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5, BADVERS: 16 } as const;
const QR = 0x8000;
const TC = 0x0200;
const RD = 0x0100;
const RA = 0x0080;
const CD = 0x0010;

export function readId(message: Uint8Array): number {
  return (message[0]! << 8) | message[1]!;
}

export function writeId(message: Uint8Array, id: number): void {
  message[0] = (id >> 8) & 0xff;
  message[1] = id & 0xff;
}

export function isResponse(message: Uint8Array): boolean {
  return message.length >= HEADER_BYTES && (message[2]! & 0x80) !== 0;
}

export function opcode(message: Uint8Array): number {
  return (message[2]! >> 3) & 0x0f;
}

export function rcode(message: Uint8Array): number {
  return message[3]! & 0x0f;
}

function count(message: Uint8Array, at: number): number {
  return (message[at]! << 8) | message[at + 1]!;
}

/** End of the name starting at `offset` (uncompressed, as in a question), or -1. */
function nameEnd(message: Uint8Array, offset: number): number {
  let at = offset;
  for (let labels = 0; at < message.length && labels < 128; labels++) {
    const length = message[at]!;
    if (length === 0) return at + 1;
    if (length > 63) return -1; // a pointer or an extended label type: not in a question we sent
    at += 1 + length;
  }
  return -1;
}

/** End of the single question of a message, or -1 when there is not exactly one readable question. */
export function questionEnd(message: Uint8Array): number {
  if (message.length < HEADER_BYTES || count(message, 4) !== 1) return -1;
  const end = nameEnd(message, HEADER_BYTES);
  return end < 0 || end + 4 > message.length ? -1 : end + 4;
}

/** Whether a reply answers the query's question (name compared case-insensitively, RFC 4343). */
export function sameQuestion(query: Uint8Array, reply: Uint8Array): boolean {
  const end = questionEnd(query);
  if (end < 0 || questionEnd(reply) !== end) return false;
  for (let i = HEADER_BYTES; i < end; i++) {
    const a = query[i]!;
    const b = reply[i]!;
    if (a !== b && !(i < end - 4 && (a | 0x20) === (b | 0x20) && (a | 0x20) >= 0x61 && (a | 0x20) <= 0x7a)) return false;
  }
  return true;
}

/** The header and question of a reply with TC set and no records: "ask again over TCP". */
export function truncatedCopy(reply: Uint8Array): Buffer | undefined {
  const end = questionEnd(reply);
  if (end < 0) return undefined;
  const out = Buffer.from(reply.subarray(0, end));
  out[2] = out[2]! | (TC >> 8);
  out.fill(0, 6, 12); // ANCOUNT, NSCOUNT, ARCOUNT
  return out;
}

/** Start offsets of the answer section's records, plus the section's end; undefined when unreadable. */
export function answerBounds(message: Uint8Array): number[] | undefined {
  let at = questionEnd(message);
  if (at < 0) return undefined;
  const bounds = [at];
  for (let n = count(message, 6); n > 0; n--) {
    const end = nameEnd(message, at);
    if (end < 0 || end + 10 > message.length) return undefined;
    at = end + 10 + count(message, end + 8);
    if (at > message.length) return undefined;
    bounds.push(at);
  }
  return bounds;
}

export interface Edns {
  /** The UDP payload size we advertise (the client's own is honoured separately). */
  payload: number;
  /** Extended RCODE (upper 8 bits of the 12-bit RCODE), e.g. BADVERS. */
  extendedRcode?: number;
}

function optRecord(edns: Edns): dnsPacket.Answer {
  return { type: 'OPT', name: '.', udpPayloadSize: edns.payload, extendedRcode: edns.extendedRcode ?? 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] } as unknown as dnsPacket.Answer;
}

/** The query's question section exactly as sent, or undefined when there is not one uncompressed question. */
export function questionBytes(message: Uint8Array): Uint8Array | undefined {
  const end = questionEnd(message);
  return end < 0 ? undefined : message.subarray(HEADER_BYTES, end);
}

/** QTYPE of the first question, read from the bytes (no decode), or undefined when there is none. */
export function questionType(message: Uint8Array): number | undefined {
  const end = questionEnd(message);
  return end < 0 ? undefined : (message[end - 4]! << 8) | message[end - 3]!;
}

// The question is echoed as the client's bytes, never re-encoded from the
// decoded name: dns-packet decodes labels as UTF-8 and re-encodes names by
// splitting on dots, so a label with a non-UTF-8 byte or a dot, or a class it
// has no name for, came back different (and a label of 63 such bytes as an
// undecodable packet). The reply is encoded around a root question of fixed
// size, which is then replaced; dns-packet never compresses names, so
// nothing in the rest of the packet points into the question.
const PLACEHOLDER_QUESTION: dnsPacket.Question = { name: '.', type: 'A', class: 'IN' };
const PLACEHOLDER_BYTES = 5;

function encodeEchoing(packet: dnsPacket.Packet, question: Uint8Array | undefined): Buffer {
  if (question === undefined) return dnsPacket.encode({ ...packet, questions: [] });
  const encoded = dnsPacket.encode({ ...packet, questions: [PLACEHOLDER_QUESTION] });
  return Buffer.concat([encoded.subarray(0, HEADER_BYTES), question, encoded.subarray(HEADER_BYTES + PLACEHOLDER_BYTES)]);
}

/** A reply with only a header (and the question echoed when there is one): FORMERR, SERVFAIL, REFUSED... */
export function errorReply(query: Uint8Array, code: number, question?: Uint8Array, edns?: Edns): Buffer {
  const flags = QR | RA | (((query[2]! << 8) | query[3]!) & (RD | CD | 0x7800)) | (code & 0x0f);
  const additionals = edns ? [optRecord({ ...edns, extendedRcode: code >> 4 })] : [];
  return encodeEchoing({ type: 'response', id: readId(query), flags, additionals }, question);
}

export interface ReplyParts {
  id: number;
  /** The query's question section as sent (questionBytes). */
  question: Uint8Array;
  /** The query's RD and CD bits are copied. */
  queryFlags: number;
  rcode: number;
  answers: dnsPacket.Answer[];
  additionals: dnsPacket.Answer[];
  /** Echo an OPT record (the query had one). */
  edns: Edns | undefined;
  authoritative: boolean;
}

/**
 * Encodes a reply within `limit` bytes: without the additional section if
 * that is what it takes (RFC 2181 §9: no TC for dropped additionals), else
 * the truncated form (TC, no records but OPT) so that the client retries over TCP.
 */
export function encodeReply(parts: ReplyParts, limit: number): { bytes: Buffer; truncated: boolean } {
  const flags = QR | RA | (parts.queryFlags & (RD | CD)) | (parts.authoritative ? dnsPacket.AUTHORITATIVE_ANSWER : 0) | parts.rcode;
  const opt = parts.edns === undefined ? [] : [optRecord(parts.edns)];
  const packet: dnsPacket.Packet = { type: 'response', id: parts.id, flags, answers: parts.answers, additionals: [...parts.additionals, ...opt] };
  const full = encodeEchoing(packet, parts.question);
  if (full.length <= limit) return { bytes: full, truncated: false };
  const withoutExtras = encodeEchoing({ ...packet, additionals: opt }, parts.question);
  if (withoutExtras.length <= limit) return { bytes: withoutExtras, truncated: false };
  return { bytes: encodeEchoing({ ...packet, flags: flags | TC, answers: [], additionals: opt }, parts.question), truncated: true };
}
