// DNS wire helpers around dns-packet: the few header fields the server reads
// or rewrites on the hot path without a full decode, and error replies built
// from the query's raw header (a query that does not decode still gets an
// answer when at least its header is there, as BIND and CoreDNS do).
import * as dnsPacket from 'dns-packet';

export const HEADER_BYTES = 12;
export const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;
const QR = 0x8000;
const TC = 0x0200;
const RD = 0x0100;
const RA = 0x0080;

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

export function isTruncated(message: Uint8Array): boolean {
  return message.length >= HEADER_BYTES && (message[2]! & 0x02) !== 0;
}

/** A reply with only a header (and the question echoed when there is one): FORMERR, SERVFAIL, REFUSED... */
export function errorReply(query: Uint8Array, rcode: number, question?: dnsPacket.Question): Buffer {
  const flags = QR | RA | (((query[2]! << 8) | query[3]!) & (RD | 0x7800)) | rcode;
  return dnsPacket.encode({ type: 'response', id: readId(query), flags, questions: question ? [question] : [] });
}

export interface ReplyParts {
  id: number;
  question: dnsPacket.Question;
  recursionDesired: boolean;
  rcode: number;
  answers: dnsPacket.Answer[];
  additionals: dnsPacket.Answer[];
  /** Echo an OPT record (the query had one) advertising this payload size. */
  ednsPayload: number | undefined;
  authoritative: boolean;
}

/** Encodes a reply; if it exceeds `limit` bytes, the truncated form (TC, no records) instead. */
export function encodeReply(parts: ReplyParts, limit: number): Buffer {
  const flags = QR | RA | (parts.recursionDesired ? RD : 0) | (parts.authoritative ? dnsPacket.AUTHORITATIVE_ANSWER : 0) | parts.rcode;
  const opt: dnsPacket.Answer[] = parts.ednsPayload === undefined ? [] : [{ type: 'OPT', name: '.', udpPayloadSize: parts.ednsPayload, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] } as unknown as dnsPacket.Answer];
  const packet: dnsPacket.Packet = { type: 'response', id: parts.id, flags, questions: [parts.question], answers: parts.answers, additionals: [...parts.additionals, ...opt] };
  const full = dnsPacket.encode(packet);
  if (full.length <= limit) return full;
  const withoutExtras = dnsPacket.encode({ ...packet, additionals: opt });
  if (withoutExtras.length <= limit) return withoutExtras;
  return dnsPacket.encode({ ...packet, flags: flags | TC, answers: [], additionals: opt });
}
