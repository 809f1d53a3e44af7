// A table the agent writes whole (one nft transaction; the host's routes to
// CNI containers, a set replaced whole) is rewritten after every sandbox
// change, although most changes leave it as it was (a sandbox on a
// non-internal network changes neither the gateway table nor, without ports,
// the publish table). Each such write is a process or two. This
// remembers the text last written, so an identical write is skipped; a forced
// write (start-up, the periodic repair) goes to the kernel whatever it holds,
// which bounds how long a table changed by hand stays wrong.
export class LastWritten {
  #text: string | undefined;

  /** What the last successful write put in the kernel; undefined when not known (none yet, or the last one failed). */
  get text(): string | undefined {
    return this.#text;
  }

  /**
   * Runs `write` unless `text` is what the last successful write put in the
   * kernel and `force` is false. A failed write forgets: the kernel may hold
   * anything after it.
   */
  async write(text: string, force: boolean, write: () => Promise<void>): Promise<boolean> {
    if (!force && this.#text === text) return false;
    this.#text = undefined;
    await write();
    this.#text = text;
    return true;
  }
}
