// One DNS query in, at most one reply out, never a throw: the server's logic
// apart from its sockets. Every packet is hostile until decoded, as BIND and
// CoreDNS treat them: shorter than a header or a response (QR=1) -> dropped
// (answering responses invites reflection loops); another opcode -> NOTIMP;
// undecodable, QDCOUNT != 1, several OPT records -> FORMERR; EDNS version
// above 0 -> BADVERS. The cluster's answers are synchronous (and cached,
// answer-cache.ts); only forwarded queries return a promise.
import * as dnsPacket from 'dns-packet';
import type { DnsOutcome, DnsQuestion } from '../../controlplane/services/dns-answers.ts';
import { AnswerCache } from './answer-cache.ts';
import type { Forwarder } from './forwarder.ts';
import { encodeReply, errorReply, HEADER_BYTES, isResponse, opcode, questionBytes, questionType, RCODE, readId, truncatedCopy, type Edns } from './wire.ts';
import { DNS_BOUNDS, DurationHistogram } from '../../lib/histogram.ts';

export interface DnsClient {
  address: string;
  port: number;
  transport: 'udp' | 'tcp';
}

export type Resolve = (client: DnsClient, question: DnsQuestion) => DnsOutcome | undefined;

export interface DnsStats {
  queries: number;
  /** Cluster answers, including those served from the cache. */
  answered: number;
  cached: number;
  /** UDP answers that did not fit: TC, the client retries over TCP. */
  truncated: number;
  forwarded: number;
  servfail: number;
  formerr: number;
  notimp: number;
  refused: number;
  dropped: number;
  /** Queries (not dropped) by question type; rarer types are `other`, so the set stays small. */
  byType: Record<QueryTypeLabel, number>;
}

export type QueryTypeLabel = 'A' | 'AAAA' | 'SRV' | 'PTR' | 'other';
const TYPE_LABELS: ReadonlyMap<number, QueryTypeLabel> = new Map([[1, 'A'], [28, 'AAAA'], [33, 'SRV'], [12, 'PTR']]);

export const MIN_UDP_PAYLOAD = 512;
/** Our advertised and honoured maximum: larger UDP answers fragment, and fragments get lost. */
export const MAX_UDP_PAYLOAD = 4096;
const TCP_LIMIT = 65_535;

export interface QueryHandler {
  handle(message: Buffer, client: DnsClient): Buffer | undefined | Promise<Buffer | undefined>;
  readonly stats: DnsStats;
  /** Time from a query's arrival to its reply (or drop), in seconds. */
  readonly latency: DurationHistogram;
  readonly cache: AnswerCache;
}

export function createQueryHandler(resolve: Resolve, forwarder: Forwarder, cacheLimit: number): QueryHandler {
  const stats: DnsStats = {
    queries: 0, answered: 0, cached: 0, truncated: 0, forwarded: 0, servfail: 0, formerr: 0, notimp: 0, refused: 0, dropped: 0,
    byType: { A: 0, AAAA: 0, SRV: 0, PTR: 0, other: 0 },
  };
  const latency = new DurationHistogram(DNS_BOUNDS);
  const cache = new AnswerCache(cacheLimit);

  // performance.now() costs tens of nanoseconds: cheap enough for the cached path.
  function handle(message: Buffer, client: DnsClient): Buffer | undefined | Promise<Buffer | undefined> {
    const started = performance.now();
    const reply = answer(message, client);
    if (reply instanceof Promise) return reply.finally(() => latency.observe((performance.now() - started) / 1000));
    latency.observe((performance.now() - started) / 1000);
    return reply;
  }

  function formerr(message: Buffer, question?: Uint8Array): Buffer {
    stats.formerr++;
    return errorReply(message, RCODE.FORMERR, question);
  }

  function answer(message: Buffer, client: DnsClient): Buffer | undefined | Promise<Buffer | undefined> {
    stats.queries++;
    if (message.length < HEADER_BYTES || isResponse(message)) {
      stats.dropped++;
      return undefined;
    }
    stats.byType[TYPE_LABELS.get(questionType(message) ?? -1) ?? 'other']++;
    const key = AnswerCache.key(message, client.transport, client.address);
    const hit = key === undefined ? undefined : cache.get(key, readId(message));
    if (hit) {
      stats.cached++;
      stats.answered++;
      return hit;
    }
    if (opcode(message) !== 0) {
      stats.notimp++;
      return errorReply(message, RCODE.NOTIMP);
    }
    let query: dnsPacket.DecodedPacket;
    try {
      query = dnsPacket.decode(message);
    } catch {
      return formerr(message);
    }
    const question = query.questions?.[0];
    if (query.questions?.length !== 1 || !question || typeof question.name !== 'string') return formerr(message);
    // Replies echo the question as sent; one that points into the header (compression) cannot be.
    const asked = questionBytes(message);
    if (asked === undefined) return formerr(message);
    const opts = (query.additionals ?? []).filter((r) => r.type === 'OPT') as { udpPayloadSize?: number; ednsVersion?: number }[];
    if (opts.length > 1) return formerr(message, asked);
    const opt = opts[0];
    // The OPT we send back advertises our own limit; the client's is the one we honour.
    const edns: Edns | undefined = opt ? { payload: MAX_UDP_PAYLOAD } : undefined;
    const udpLimit = opt ? Math.min(Math.max(opt.udpPayloadSize ?? 0, MIN_UDP_PAYLOAD), MAX_UDP_PAYLOAD) : MIN_UDP_PAYLOAD;
    if (opt && (opt.ednsVersion ?? 0) > 0) {
      stats.formerr++;
      return errorReply(message, RCODE.BADVERS, asked, edns);
    }
    const limit = client.transport === 'tcp' ? TCP_LIMIT : udpLimit;
    let outcome: DnsOutcome | undefined;
    try {
      outcome = resolve(client, { name: question.name, type: question.type, class: question.class });
    } catch {
      stats.servfail++;
      return errorReply(message, RCODE.SERVFAIL, asked, edns);
    }
    if (outcome === undefined) {
      stats.refused++;
      return errorReply(message, RCODE.REFUSED, asked, edns);
    }
    if (outcome.kind === 'forward') return forward(message, client, asked, edns, limit);
    stats.answered++;
    const reply = encodeReply({
      id: readId(message),
      question: asked,
      queryFlags: query.flags ?? 0,
      rcode: RCODE[outcome.rcode],
      answers: outcome.answers,
      additionals: outcome.additionals,
      edns,
      authoritative: true,
    }, limit);
    if (reply.truncated) stats.truncated++;
    if (key !== undefined) cache.set(key, reply.bytes);
    return reply.bytes;
  }

  async function forward(message: Buffer, client: DnsClient, question: Uint8Array, edns: Edns | undefined, limit: number): Promise<Buffer | undefined> {
    stats.forwarded++;
    const result = await forwarder.forward(message, client.transport);
    if (result.kind === 'overloaded') {
      // As CoreDNS's forward plugin beyond max_concurrent: the stub tries its next nameserver.
      stats.refused++;
      return errorReply(message, RCODE.REFUSED, question, edns);
    }
    if (result.kind === 'failed') {
      stats.servfail++;
      return errorReply(message, RCODE.SERVFAIL, question, edns);
    }
    // The upstream saw the client's own EDNS size; one that ignores it still must not overflow the client.
    if (result.reply.length <= limit) return result.reply;
    stats.truncated++;
    return truncatedCopy(result.reply) ?? errorReply(message, RCODE.SERVFAIL, question, edns);
  }

  return { handle, stats, latency, cache };
}
