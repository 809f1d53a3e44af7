// The CNI plugin's commands, run inside the agent (the CniExec API method):
// bin/weft-cni forwards its CNI_* environment and stdin unread (plugin.py),
// and this turns them into the agent's own API calls and the calls' replies
// into a CNI result or error. The calls go through `call`, the same handlers
// and proto/agent.proto shaping as a call on the socket (api/cni-handler.ts),
// so there is one validator, the agent's, and the plugin loads none.
import { STATUS } from '../api/json-line.ts';
import { parseCommand, parseConfig, parseEnv, SUPPORTED_VERSIONS, type CniConfig, type CniEnv } from './cni-config.ts';
import { CNI_CODE, CniError } from './cni-error.ts';
import { buildResult, type SandboxReply } from './cni-result.ts';
import { entryOf } from '../../lib/bandwidth.ts';

/** Runs one agent API method in-process; rejects with an error carrying the gRPC status `code`. */
export type AgentCall = (method: string, request: object) => Promise<object>;

/** What the plugin prints (nothing when empty) and exits with. */
export interface CniOutcome {
  exitCode: number;
  output: string;
}

const codeOf = (error: unknown): number | undefined => {
  const code = (error as { code?: unknown }).code;
  return typeof code === 'number' ? code : undefined;
};

/** A failed agent call as a CNI error: a request the agent refuses (bad name, no such network) is the configuration's fault. */
function asCniError(error: unknown): CniError {
  if (error instanceof CniError) return error;
  const code = codeOf(error);
  if (code === STATUS.invalidArgument || code === STATUS.notFound) return new CniError(CNI_CODE.invalidConfig, (error as Error).message);
  return new CniError(CNI_CODE.agentFailed, (error as Error).message);
}

async function add(call: AgentCall, config: CniConfig, env: CniEnv): Promise<object> {
  const reply = (await call('SandboxCreate', {
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
  })) as SandboxReply;
  return buildResult(config.cniVersion, reply, config.network, env.ifname, env.netns);
}

async function del(call: AgentCall, env: CniEnv): Promise<void> {
  // Nothing attached for this key (never added, half-created and rolled back, deleted twice) is success.
  await call('ContainerDetach', { containerId: env.containerId, ifname: env.ifname });
}

async function check(call: AgentCall, config: CniConfig, env: CniEnv): Promise<void> {
  let reply: { sandbox?: SandboxReply; problems?: string[] };
  try {
    reply = await call('ContainerCheck', { containerId: env.containerId, ifname: env.ifname });
  } catch (error) {
    const cni = asCniError(error);
    throw cni.code === CNI_CODE.invalidConfig ? new CniError(CNI_CODE.containerUnknown, cni.message) : cni;
  }
  const iface = reply.sandbox?.interfaces?.find((i) => i.ifname === env.ifname);
  if (iface && iface.network !== config.network) throw new CniError(CNI_CODE.drift, `interface ${env.ifname} is on weft network ${iface.network}, not ${config.network}`);
  const problems = reply.problems ?? [];
  if (problems.length > 0) throw new CniError(CNI_CODE.drift, `container ${env.containerId} interface ${env.ifname} is not as weft attached it`, problems.join('; '));
}

/**
 * STATUS (1.1): whether an ADD could work now: the agent has the network (so
 * it is in a cluster). Anything else is code 50 with the reason. (An agent
 * that does not answer is the plugin's to report, with the same code.)
 */
async function status(call: AgentCall, config: CniConfig): Promise<void> {
  try {
    await call('NetworkInspect', { name: config.network });
  } catch (error) {
    const cause = asCniError(error);
    throw new CniError(CNI_CODE.notAvailable, `weft cannot attach containers to network ${config.network} now: ${cause.message}`, cause.details);
  }
}

/**
 * GC (1.1): the agent releases every attachment this CNI network made on the
 * weft network that the runtime no longer lists. A weft network that is gone
 * has nothing left to release.
 */
async function gc(call: AgentCall, config: CniConfig): Promise<void> {
  try {
    await call('ContainerGc', { network: config.network, cniNetwork: config.name, valid: config.validAttachments });
  } catch (error) {
    if (codeOf(error) === STATUS.notFound) return;
    throw asCniError(error);
  }
}

/**
 * Runs one CNI command: the result or error JSON to print, and the exit code.
 * `onUnexpected` hears a failure that is neither a CNI error nor an agent
 * call's (those carry a code, and the API logs its own): a bug in this logic,
 * which the runtime sees only as code 100.
 */
export async function runCni(
  env: Readonly<Record<string, string | undefined>>, configText: string, call: AgentCall, onUnexpected: (error: Error) => void = () => undefined,
): Promise<CniOutcome> {
  let version = '1.0.0';
  try {
    const command = parseCommand(env);
    if (command === 'VERSION') return { exitCode: 0, output: JSON.stringify({ cniVersion: '1.0.0', supportedVersions: SUPPORTED_VERSIONS }) };
    const config = parseConfig(configText, command);
    version = config.cniVersion;
    if (command === 'STATUS' || command === 'GC') {
      await (command === 'STATUS' ? status(call, config) : gc(call, config));
      return { exitCode: 0, output: '' };
    }
    const request = parseEnv(env);
    if (request.command === 'ADD') return { exitCode: 0, output: JSON.stringify(await add(call, config, request)) };
    await (request.command === 'DEL' ? del(call, request) : check(call, config, request));
    return { exitCode: 0, output: '' };
  } catch (error) {
    if (!(error instanceof CniError) && codeOf(error) === undefined) onUnexpected(error instanceof Error ? error : new Error(String(error)));
    return { exitCode: 1, output: JSON.stringify(asCniError(error).toJSON(version)) };
  }
}
