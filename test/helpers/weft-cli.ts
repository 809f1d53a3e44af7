// Runs the real `weft` CLI (same Node, same entry point as bin/weft), either on
// this host or inside a lab host's namespace with WEFT_SOCKET set to its agent.
import { execa } from 'execa';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import type { LabHost } from '../../deploy/lab/lab.ts';

export const CLI_MAIN = fileURLToPath(new URL('../../agent/cli/main.ts', import.meta.url));

export interface CliResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export async function weft(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  const r = await execa(process.execPath, ['--disable-warning=ExperimentalWarning', CLI_MAIN, ...args], { reject: false, env, timeout: 120_000 });
  return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

export async function weftOn(host: LabHost, args: string[]): Promise<CliResult> {
  const r = await execa('ip', ['netns', 'exec', host.netns, process.execPath, '--disable-warning=ExperimentalWarning', CLI_MAIN, ...args], {
    reject: false,
    env: { WEFT_SOCKET: host.socket },
    timeout: 120_000,
  });
  return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

/** An HTTP GET made from inside a network namespace (a lab host's addresses are reachable only there). */
export async function httpGetIn(netns: string, url: string): Promise<{ status: number; body: string }> {
  const script = 'const r = await fetch(process.argv[1], { signal: AbortSignal.timeout(10000) }); process.stdout.write(r.status + "\\n" + await r.text());';
  const r = await execa('ip', ['netns', 'exec', netns, process.execPath, '--input-type=module', '-e', script, url], { reject: false, timeout: 30_000, stripFinalNewline: false });
  if (r.exitCode !== 0) throw new Error(`GET ${url} in ${netns} failed: ${String(r.stderr)}`);
  const out = String(r.stdout);
  const at = out.indexOf('\n');
  return { status: Number(out.slice(0, at)), body: out.slice(at + 1) };
}

/** A lab prefix unique to this run, so parallel or crashed runs never collide. */
export function uniquePrefix(tag: string): string {
  return `wt${tag}${randomBytes(3).toString('hex')}`.slice(0, 12);
}

export async function eventually<T>(what: string, check: () => Promise<T | undefined | false>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
    } catch (error) {
      last = error;
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
}
