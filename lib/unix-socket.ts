// Whether something answers on a unix socket path: a server refuses to start
// over a live one, and removes a stale file left by a process that was killed.
import { existsSync, unlinkSync } from 'node:fs';
import { connect } from 'node:net';

/** Resolves once `socketPath` is free to listen on; rejects with `whenLive()` if a server answers there. */
export async function claimSocketPath(socketPath: string, whenLive: () => Error): Promise<void> {
  if (!existsSync(socketPath)) return;
  const live = await new Promise<boolean>((resolve) => {
    const socket = connect(socketPath);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
  if (live) throw whenLive();
  unlinkSync(socketPath); // stale, left by a process that did not shut down cleanly
}
