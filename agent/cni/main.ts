// The `weft` CNI plugin (bin/weft-cni, through entry.mjs): runs once per
// container network operation, so it loads neither the agent's code nor a
// gRPC library: one JSON-line call on the agent's socket, the CLI's client
// (api/client.ts). It turns the CNI command into that call and the reply into
// a CNI result.
import { AgentClient, ApiCallError } from '../api/client.ts';
import { STATUS } from '../api/json-line.ts';
import { parseCommand, parseConfig, parseEnv, SUPPORTED_VERSIONS, type CniConfig, type CniEnv } from './cni-config.ts';
import { CNI_CODE, CniError } from './cni-error.ts';
import { buildResult, type SandboxReply } from './cni-result.ts';
import { entryOf } from '../../lib/bandwidth.ts';

// (a builtin taken with process.getBuiltinModule, not `import`: docs/cli.md, "Startup")
const { readFileSync } = process.getBuiltinModule('node:fs');

async function call<T>(config: CniConfig, method: string, request: object): Promise<T> {
  try {
    // A call opens its own connection and closes it when answered (api/client.ts).
    return await new AgentClient(config.socket).call<T>(method, request);
  } catch (error) {
    throw asCniError(error, config.socket);
  }
}

function asCniError(error: unknown, socket: string): CniError {
  if (!(error instanceof ApiCallError)) return new CniError(CNI_CODE.io, `talking to the weft agent at ${socket} failed`, (error as Error).message);
  if (error.code === STATUS.unavailable || error.code === STATUS.deadlineExceeded) {
    return new CniError(CNI_CODE.tryLater, `cannot reach the weft agent at ${socket}`, 'start it with `weft agent` (as root), or set "socket" in the network configuration');
  }
  if (error.code === STATUS.invalidArgument || error.code === STATUS.notFound) return new CniError(CNI_CODE.invalidConfig, error.message);
  return new CniError(CNI_CODE.agentFailed, error.message);
}

async function add(config: CniConfig, env: CniEnv): Promise<object> {
  const reply = await call<SandboxReply>(config, 'SandboxCreate', {
    networks: [config.network],
    name: env.name ?? config.endpointName,
    aliases: [...new Set([...config.aliases, ...env.aliases])],
    netns: env.netns,
    command: [],
    services: [...new Set([...config.services, ...env.services])],
    containerId: env.containerId,
    ifname: env.ifname,
    ...(config.bandwidth ? { bandwidth: entryOf(config.bandwidth) } : {}),
    cniNetwork: config.name,
  });
  return buildResult(config.cniVersion, reply, config.network, env.ifname, env.netns);
}

async function del(config: CniConfig, env: CniEnv): Promise<void> {
  // Nothing attached for this key (never added, half-created and rolled back, deleted twice) is success.
  await call(config, 'ContainerDetach', { containerId: env.containerId, ifname: env.ifname });
}

async function check(config: CniConfig, env: CniEnv): Promise<void> {
  let reply: { sandbox?: SandboxReply; problems?: string[] };
  try {
    reply = await call(config, 'ContainerCheck', { containerId: env.containerId, ifname: env.ifname });
  } catch (error) {
    if (error instanceof CniError && error.code === CNI_CODE.invalidConfig) throw new CniError(CNI_CODE.containerUnknown, error.message);
    throw error;
  }
  const iface = reply.sandbox?.interfaces?.find((i) => i.ifname === env.ifname);
  if (iface && iface.network !== config.network) throw new CniError(CNI_CODE.drift, `interface ${env.ifname} is on weft network ${iface.network}, not ${config.network}`);
  const problems = reply.problems ?? [];
  if (problems.length > 0) throw new CniError(CNI_CODE.drift, `container ${env.containerId} interface ${env.ifname} is not as weft attached it`, problems.join('; '));
}

/**
 * STATUS (1.1): whether an ADD could work now: the agent answers and has the
 * network (so it is in a cluster). Anything else is code 50 with the reason.
 */
async function status(config: CniConfig): Promise<void> {
  try {
    await call(config, 'NetworkInspect', { name: config.network });
  } catch (error) {
    const cause = error as CniError;
    throw new CniError(CNI_CODE.notAvailable, `weft cannot attach containers to network ${config.network} now: ${cause.message}`, cause.details);
  }
}

/**
 * GC (1.1): the agent releases every attachment this CNI network made on the
 * weft network that the runtime no longer lists. A weft network that is gone
 * has nothing left to release.
 */
async function gc(config: CniConfig): Promise<void> {
  try {
    await new AgentClient(config.socket).call('ContainerGc', { network: config.network, cniNetwork: config.name, valid: config.validAttachments });
  } catch (error) {
    if (error instanceof ApiCallError && error.code === STATUS.notFound) return;
    throw asCniError(error, config.socket);
  }
}

export function readStdin(): string {
  try {
    return readFileSync(0, 'utf8');
  } catch (error) {
    throw new CniError(CNI_CODE.io, 'cannot read the network configuration from stdin', (error as Error).message);
  }
}

/** Runs one CNI command; returns the exit code after writing the result or error JSON to stdout. */
export async function runCni(env: NodeJS.ProcessEnv, stdin: () => string, out: (text: string) => void): Promise<number> {
  let version = '1.0.0';
  try {
    const command = parseCommand(env);
    if (command === 'VERSION') {
      out(JSON.stringify({ cniVersion: '1.0.0', supportedVersions: SUPPORTED_VERSIONS }));
      return 0;
    }
    const config = parseConfig(stdin(), command);
    version = config.cniVersion;
    if (command === 'STATUS' || command === 'GC') {
      await (command === 'STATUS' ? status(config) : gc(config));
      return 0;
    }
    const request = parseEnv(env);
    if (request.command === 'ADD') out(JSON.stringify(await add(config, request)));
    else if (request.command === 'DEL') await del(config, request);
    else await check(config, request);
    return 0;
  } catch (error) {
    const cni = error instanceof CniError ? error : new CniError(CNI_CODE.agentFailed, (error as Error).message);
    out(JSON.stringify(cni.toJSON(version)));
    return 1;
  }
}
