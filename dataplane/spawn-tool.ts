// One short-lived tool process (ip, bridge, nft, tc): its exit code and
// output, with a deadline. Written on node:child_process directly rather
// than execa: a container start runs five of these one after the other, and
// execa's per-call machinery (streams, transforms, its own promises) cost
// ~3-4 ms of each ~14 ms call here (bench: 14 ms vs 10-11 ms for `ip -batch`
// with one line), ~15-20 ms of a CNI ADD.
import { spawn } from 'node:child_process';

/** A finished tool: the data plane's Runner answers with this (exec.ts). */
export interface RunResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** After SIGTERM at the deadline, how long before SIGKILL and giving up on the output. */
const KILL_GRACE_MS = 2_000;

/**
 * Runs `file args`, writing `input` to its stdin. Never rejects: a tool that
 * cannot start or runs past `timeoutMs` is exit code -1 with the reason last
 * in stderr. Output is UTF-8 with one trailing newline removed.
 */
export function spawnTool(file: string, args: readonly string[], input: string | undefined, timeoutMs: number): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = spawn(file, args, { stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let failure = '';
    let settled = false;
    const finish = (code: number | null) => {
      if (settled) return;
      settled = true;
      clearTimeout(term);
      clearTimeout(kill);
      const stderr = [trimNewline(Buffer.concat(err).toString('utf8')), failure].filter((s) => s !== '').join('\n');
      resolve({ exitCode: failure === '' && code !== null ? code : -1, stdout: trimNewline(Buffer.concat(out).toString('utf8')), stderr });
    };
    let kill: NodeJS.Timeout | undefined;
    const term = setTimeout(() => {
      failure = `no exit within ${timeoutMs / 1000} s: killed`;
      child.kill('SIGTERM');
      kill = setTimeout(() => {
        child.kill('SIGKILL');
        // A grandchild holding the pipes would keep 'close' from ever coming.
        child.stdout?.destroy();
        child.stderr?.destroy();
        finish(null);
      }, KILL_GRACE_MS);
    }, timeoutMs);
    child.stdout?.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr?.on('data', (chunk: Buffer) => err.push(chunk));
    child.on('error', (error) => {
      failure ||= `cannot run ${file}: ${error.message}`;
      finish(null);
    });
    child.on('close', (code) => finish(code));
    if (child.stdin) {
      child.stdin.on('error', () => undefined); // a tool that exits without reading all of it: its exit code says what happened
      child.stdin.end(input);
    }
  });
}

function trimNewline(text: string): string {
  if (text.endsWith('\r\n')) return text.slice(0, -2);
  return text.endsWith('\n') ? text.slice(0, -1) : text;
}
