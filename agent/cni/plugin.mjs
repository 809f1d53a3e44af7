// The `weft` CNI plugin (bin/weft-cni runs it): a pipe to the local agent.
// It sends the runtime's CNI_* environment and the network configuration,
// unread, in one CniExec call on the agent's API socket; the agent checks
// both, does the work and answers what to print and the exit code
// (agent/cni/cni-commands.ts, agent/api/cni-handler.ts). The plugin starts
// once per container network operation, and Node loading zod and ~100
// modules was most of its ~200 ms start, so this is one plain JavaScript
// file: no TypeScript, no zod, no project module, builtins through
// process.getBuiltinModule (an `import` of one builds a module facade;
// docs/cli.md, "Startup").
// It checks only what it needs before it can ask the agent: the command
// (VERSION is answered here), that stdin is a JSON object, and its "socket".
// When the agent cannot be reached it answers as the agent-side logic would
// have with a working configuration: 11 (try again later), 50 for STATUS.
//
// The JSON-line framing (agent/api/json-line.ts) is written out here rather
// than imported: importing client.ts would load TypeScript modules again, and
// the framing is small (one request line, one reply line, per connection).
// test/unit/cni-pipe.test.ts runs this file against the agent's real socket
// server and proto codec, and checks its constants against the agent's.

const { readFileSync } = process.getBuiltinModule('node:fs');
const { connect } = process.getBuiltinModule('node:net');

/** Same values as agent/cni/cni-config.ts, agent/api/json-line.ts, agent/api/defaults.ts, agent/api/schemas.ts, agent/cni/cni-error.ts (a unit test compares). */
export const SUPPORTED_VERSIONS = ['0.4.0', '1.0.0', '1.1.0'];
export const COMMANDS = ['ADD', 'DEL', 'CHECK', 'VERSION', 'STATUS', 'GC'];
export const DEFAULT_API_SOCKET = '/run/weft/weft.sock';
export const MAX_LINE_BYTES = 4 * 1024 * 1024;
export const MAX_ENV_VALUE_BYTES = 64 * 1024;
export const STATUS = { ok: 0, invalidArgument: 3, resourceExhausted: 8, unimplemented: 12 };
export const CNI_CODE = { invalidEnv: 4, io: 5, decode: 6, invalidConfig: 7, tryLater: 11, notAvailable: 50, agentFailed: 100 };
/** The variables the CNI spec gives a plugin: all the agent reads, and nothing else of the runtime's environment. */
export const FORWARDED_ENV = ['CNI_COMMAND', 'CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME', 'CNI_ARGS', 'CNI_PATH'];
const CALL_TIMEOUT_MS = 60_000;
const MAX_SOCKET_PATH = 107; // sun_path holds 108 bytes with the terminating NUL

class CniError extends Error {
  constructor(code, msg, details = '') {
    super(msg);
    this.code = code;
    this.details = details;
  }

  toJSON(cniVersion) {
    return { cniVersion, code: this.code, msg: this.message, ...(this.details === '' ? {} : { details: this.details }) };
  }
}

/** The agent did not answer (no socket, refused, closed, timed out): the runtime should try again later. */
class Unreachable extends Error {}

function commandOf(env) {
  const command = env.CNI_COMMAND;
  if (COMMANDS.includes(command)) return command;
  throw new CniError(CNI_CODE.invalidEnv, command === undefined || command === '' ? 'CNI_COMMAND is not set' : `CNI_COMMAND "${command}" is not one of ${COMMANDS.join(', ')}`);
}

function decode(text) {
  let config;
  try {
    config = JSON.parse(text);
  } catch (error) {
    throw new CniError(CNI_CODE.decode, 'cannot decode the network configuration on stdin', error.message);
  }
  if (typeof config !== 'object' || config === null || Array.isArray(config)) throw new CniError(CNI_CODE.decode, 'the network configuration on stdin must be a JSON object');
  return config;
}

/**
 * The spec's variables, as the agent takes them. One over the agent's size
 * limit is refused here, so the runtime hears "bad environment" (4) rather
 * than the agent's refusal of the whole request (which reads as 7).
 */
function forwardedEnv(env) {
  const forwarded = Object.fromEntries(FORWARDED_ENV.filter((key) => typeof env[key] === 'string').map((key) => [key, env[key]]));
  for (const [key, value] of Object.entries(forwarded)) {
    if (Buffer.byteLength(value) > MAX_ENV_VALUE_BYTES) throw new CniError(CNI_CODE.invalidEnv, `${key} is over ${MAX_ENV_VALUE_BYTES} bytes`);
  }
  return forwarded;
}

/** The agent's socket: checked here because the plugin connects to it before the agent can check anything. */
function socketOf(config) {
  const socket = config.socket ?? DEFAULT_API_SOCKET;
  const problem = typeof socket !== 'string' || !socket.startsWith('/') ? 'socket must be an absolute path' : Buffer.byteLength(socket) > MAX_SOCKET_PATH ? 'socket must be a unix socket path under 108 characters' : '';
  if (problem !== '') throw new CniError(CNI_CODE.invalidConfig, 'invalid network configuration', `✖ ${problem}\n  → at socket`);
  return socket;
}

/**
 * One call in the agent API's JSON-line framing: `{"method","request"}\n` out,
 * `{"code":0,"reply"}\n` or `{"code","message"}\n` back, one call per
 * connection. Resolves with the parsed reply line; rejects with Unreachable
 * when there is no answer.
 */
export function callAgent(socketPath, method, request) {
  return new Promise((resolve, reject) => {
    const socket = connect(socketPath);
    const chunks = [];
    let size = 0;
    let settled = false;
    const finish = (error, reply) => {
      if (settled) return;
      settled = true;
      socket.destroy();
      if (error) reject(error);
      else resolve(reply);
    };
    socket.setTimeout(CALL_TIMEOUT_MS, () => finish(new Unreachable(`no answer within ${CALL_TIMEOUT_MS / 1000} s`)));
    socket.on('error', (error) => finish(new Unreachable(error.message)));
    socket.on('end', () => finish(new Unreachable('the agent closed the connection without answering')));
    socket.on('data', (chunk) => {
      size += chunk.length;
      if (size > MAX_LINE_BYTES) return finish(new CniError(CNI_CODE.agentFailed, `the weft agent's reply to ${method} exceeds ${MAX_LINE_BYTES} bytes`));
      chunks.push(chunk);
      if (!chunk.includes(0x0a)) return;
      const body = Buffer.concat(chunks);
      try {
        finish(undefined, JSON.parse(body.subarray(0, body.indexOf(0x0a)).toString('utf8')));
      } catch (error) {
        finish(new CniError(CNI_CODE.agentFailed, `cannot read the weft agent's reply to ${method}`, error.message));
      }
    });
    socket.write(`${JSON.stringify({ method, request })}\n`);
  });
}

/** What the agent's answer to CniExec means to the runtime. */
function outcomeOf(line, socketPath) {
  if (line?.code === STATUS.ok) {
    const { exitCode, output } = line.reply ?? {};
    if (Number.isInteger(exitCode) && typeof output === 'string') return { exitCode, output };
    throw new CniError(CNI_CODE.agentFailed, 'the weft agent\'s reply to CniExec has no exitCode and output');
  }
  const message = typeof line?.message === 'string' ? line.message : `CniExec failed with status ${line?.code}`;
  if (line?.code === STATUS.unimplemented) throw new CniError(CNI_CODE.agentFailed, `the weft agent at ${socketPath} does not run CNI commands (no CniExec): it is older than this plugin; restart it from the same install`, message);
  if (line?.code === STATUS.invalidArgument || line?.code === STATUS.resourceExhausted) throw new CniError(CNI_CODE.invalidConfig, message);
  throw new CniError(CNI_CODE.agentFailed, message);
}

/** Runs one CNI command through the agent: what to print (nothing when empty) and the exit code. */
export async function runPlugin(env, readStdin) {
  let version = '1.0.0';
  try {
    const command = commandOf(env);
    if (command === 'VERSION') return { exitCode: 0, output: JSON.stringify({ cniVersion: '1.0.0', supportedVersions: SUPPORTED_VERSIONS }) };
    let text;
    try {
      text = readStdin();
    } catch (error) {
      throw new CniError(CNI_CODE.io, 'cannot read the network configuration from stdin', error.message);
    }
    const config = decode(text);
    const socketPath = socketOf(config);
    // Errors answered here carry the configuration's version, as the agent's do once it has read it.
    if (SUPPORTED_VERSIONS.includes(config.cniVersion)) version = config.cniVersion;
    const forwarded = forwardedEnv(env);
    try {
      return outcomeOf(await callAgent(socketPath, 'CniExec', { env: forwarded, config: text }), socketPath);
    } catch (error) {
      const failure = error instanceof Unreachable
        ? new CniError(CNI_CODE.tryLater, `cannot reach the weft agent at ${socketPath}`, 'start it with `weft agent` (as root), or set "socket" in the network configuration')
        : error;
      if (command !== 'STATUS' || !(failure instanceof CniError)) throw failure;
      // STATUS: whatever keeps the agent from answering means ADD cannot work now.
      throw new CniError(CNI_CODE.notAvailable, `weft cannot attach containers to network ${String(config.network)} now: ${failure.message}`, failure.details);
    }
  } catch (error) {
    const cni = error instanceof CniError ? error : new CniError(CNI_CODE.io, 'the weft CNI plugin failed', error?.message ?? String(error));
    return { exitCode: 1, output: JSON.stringify(cni.toJSON(version)) };
  }
}

// Run, not imported (tests import it). A Node without import.meta.main (before 24.2) runs it too:
// an ADD that printed nothing and exited 0 would look like success.
if (import.meta.main !== false) {
  const { exitCode, output } = await runPlugin(process.env, () => readFileSync(0, 'utf8'));
  if (output !== '') process.stdout.write(`${output}\n`);
  process.exitCode = exitCode;
}
