// The CniExec API method: a whole CNI plugin run, done by the agent. The
// plugin (agent/cni/plugin.py) forwards its environment and stdin, and the
// agent answers what it prints and exits with. The inner calls (SandboxCreate,
// ContainerDetach, ...) are made through `viaApi`: the socket's own handlers
// and proto shaping, in-process, so a CNI run and a CLI call see one API.
import { runCni, type AgentCall } from '../cni/cni-commands.ts';
import { parse } from './overlay-handlers.ts';
import { cniExecRequest } from './schemas.ts';

type Handler = (request: unknown) => Promise<object>;

/** The methods a CNI run may call: CniExec itself is not one. */
const CNI_METHODS = new Set(['SandboxCreate', 'ContainerDetach', 'ContainerCheck', 'NetworkInspect', 'ContainerGc']);

/** `onUnexpected`: a failure inside the CNI logic itself (runCni), for the agent's log. */
export function cniHandlers(viaApi: AgentCall, onUnexpected?: (error: Error) => void): Record<string, Handler> {
  const call: AgentCall = (method, request) => {
    if (!CNI_METHODS.has(method)) throw new Error(`a CNI run cannot call ${method}`);
    return viaApi(method, request);
  };
  return {
    CniExec: async (req) => {
      const { env, config } = parse(cniExecRequest, req);
      return runCni(env, config, call, onUnexpected);
    },
  };
}
