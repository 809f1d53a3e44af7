// DNS over TCP: every message is preceded by its length in two bytes (RFC 1035 §4.2.2).
export function frame(message: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(message.length + 2);
  out.writeUInt16BE(message.length, 0);
  out.set(message, 2);
  return out;
}

/** Splits a byte stream into messages; keeps an incomplete tail for the next chunk. */
export class TcpFrames {
  #buffer: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): Buffer[] {
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
    const messages: Buffer[] = [];
    while (this.#buffer.length >= 2) {
      const length = this.#buffer.readUInt16BE(0);
      if (this.#buffer.length < 2 + length) break;
      messages.push(Buffer.from(this.#buffer.subarray(2, 2 + length)));
      this.#buffer = this.#buffer.subarray(2 + length);
    }
    return messages;
  }

  get pendingBytes(): number {
    return this.#buffer.length;
  }
}
