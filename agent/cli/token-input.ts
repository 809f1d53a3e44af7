// Where `weft join` reads its token from. A token on the command line is
// visible to every local user in `ps`, so it can also come from a file
// (--token-file PATH) or from standard input (--token -).
import { UsageError } from './usage.ts';
// (a builtin taken with process.getBuiltinModule, not `import`: docs/cli.md, "Startup")
const { readFileSync, statSync } = process.getBuiltinModule('node:fs');

// A token is 115 characters; anything much larger is not a token file.
const MAX_TOKEN_FILE_BYTES = 4096;

export interface TokenSources {
  token?: string;
  tokenFile?: string;
}

/** Returns the token text (not yet parsed); throws UsageError saying what is wrong. */
export async function readTokenText(sources: TokenSources, stdin: NodeJS.ReadableStream = process.stdin): Promise<string> {
  if (sources.token !== undefined && sources.tokenFile !== undefined) {
    throw new UsageError('give the join token once: either --token or --token-file, not both');
  }
  if (sources.tokenFile !== undefined) return fromFile(sources.tokenFile);
  if (sources.token === '-') return fromStdin(stdin);
  if (sources.token !== undefined) return sources.token;
  throw new UsageError("required option '--token <token>' not specified: give the join token as --token TOKEN, --token - (read from standard input) or --token-file PATH");
}

function fromFile(path: string): string {
  let text: string;
  try {
    const size = statSync(path).size;
    if (size > MAX_TOKEN_FILE_BYTES) throw new UsageError(`--token-file ${path}: ${size} bytes is too large for a join token file (one WEFT-1-... line)`);
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if (error instanceof UsageError) throw error;
    throw new UsageError(`--token-file ${path}: cannot read the join token: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  return nonEmpty(text, `--token-file ${path}`);
}

async function fromStdin(stdin: NodeJS.ReadableStream): Promise<string> {
  if ((stdin as { isTTY?: boolean }).isTTY) process.stderr.write('Join token: ');
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stdin) {
    const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
    size += buffer.length;
    if (size > MAX_TOKEN_FILE_BYTES) throw new UsageError(`--token -: more than ${MAX_TOKEN_FILE_BYTES} bytes on standard input is not a join token`);
    chunks.push(buffer);
    // Interactive use: the first line is the token; do not wait for end of file.
    if (buffer.includes(0x0a) && (stdin as { isTTY?: boolean }).isTTY) break;
  }
  return nonEmpty(Buffer.concat(chunks).toString('utf8'), '--token - (standard input)');
}

function nonEmpty(text: string, what: string): string {
  const lines = text.split('\n').map((l) => l.trim()).filter((l) => l !== '');
  if (lines.length === 0) throw new UsageError(`${what}: no join token found (expected one WEFT-1-... line)`);
  if (lines.length > 1) throw new UsageError(`${what}: expected one line with the join token, found ${lines.length}`);
  return lines[0]!;
}
