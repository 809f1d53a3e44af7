// Encoded answers of the cluster's names, so that a repeated question costs a
// map lookup and a copy instead of decode -> resolve -> encode. The key is the
// client (the view depends on who asks), the transport and the query's bytes
// after the ID: the same name in the same case, type, flags and EDNS size get
// byte-identical answers, the question echoed as asked. Only the ID is
// rewritten, and answers of several records are re-shuffled by permuting the
// records' bytes (dns-packet writes names uncompressed, so every record
// stands alone), so round robin survives the cache. The caller drops the
// whole cache when the cluster's state changes (invalidate()); it is also
// dropped when full (in entries or in bytes), which bounds memory under a
// flood of distinct names.
import { answerBounds, writeId } from './wire.ts';

interface Entry {
  bytes: Buffer;
  /** Start offsets of the answer records plus the section's end, when there are several. */
  records: number[] | undefined;
}

/** Queries longer than this are not cached (normal queries are < 300 bytes). */
const MAX_QUERY_BYTES = 512;
/**
 * Bytes of cached answers. The entry limit alone let one sandbox pin
 * entries x 64 KB (a big TCP answer under thousands of spellings of its
 * name); normal answers are ~100 bytes, so this never bites them.
 */
export const MAX_CACHE_BYTES = 32 * 1024 * 1024;

export class AnswerCache {
  readonly #limit: number;
  readonly #random: () => number;
  #entries = new Map<string, Entry>();
  #bytes = 0;
  #order: number[] = [];

  constructor(limit: number, random: () => number = Math.random) {
    this.#limit = limit;
    this.#random = random;
  }

  static key(query: Buffer, transport: string, address: string): string | undefined {
    return query.length > MAX_QUERY_BYTES ? undefined : `${transport}|${address}|${query.toString('latin1', 2)}`;
  }

  /** A copy of the cached answer with this ID (and a fresh order of its records), or undefined. */
  get(key: string, id: number): Buffer | undefined {
    const entry = this.#entries.get(key);
    if (!entry) return undefined;
    const out = Buffer.allocUnsafe(entry.bytes.length);
    entry.bytes.copy(out);
    writeId(out, id);
    if (entry.records) this.#shuffleInto(entry, out);
    return out;
  }

  set(key: string, answer: Buffer): void {
    if (this.#entries.size >= this.#limit || this.#bytes + answer.length > MAX_CACHE_BYTES) this.clear();
    const bounds = answerBounds(answer);
    this.#bytes += answer.length - (this.#entries.get(key)?.bytes.length ?? 0);
    this.#entries.set(key, { bytes: Buffer.from(answer), records: bounds && bounds.length > 2 ? bounds : undefined });
  }

  clear(): void {
    this.#entries = new Map();
    this.#bytes = 0;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** Bytes of the cached answers. */
  get bytes(): number {
    return this.#bytes;
  }

  #shuffleInto(entry: Entry, out: Buffer): void {
    const records = entry.records!;
    const n = records.length - 1;
    const order = this.#order;
    order.length = n;
    for (let i = 0; i < n; i++) order[i] = i;
    for (let i = n - 1; i > 0; i--) {
      const j = Math.floor(this.#random() * (i + 1));
      const swap = order[i]!;
      order[i] = order[j]!;
      order[j] = swap;
    }
    let at = records[0]!;
    for (const k of order) at += entry.bytes.copy(out, at, records[k]!, records[k + 1]!);
  }
}
