// Fuzz targets for the agent API on its unix socket: each request message as
// gRPC decodes it (proto/agent.proto through the agent's own loader), then the
// handler's zod schema, and for the two requests that are validated further
// before anything is allocated (network create, service create) the
// validation of Networks.create and Services.create too, over in-memory
// tables and allocations that say yes. The clean refusal is AgentError (the
// status the CLI turns into exit 2); gRPC answers an undecodable request with
// INTERNAL on its own.
import type * as grpc from '@grpc/grpc-js';
import type { z } from 'zod';
import { AgentApiService } from '../../../agent/wire/protos.ts';
import { AgentError, badRequest } from '../../../agent/api/errors.ts';
import { parse } from '../../../agent/api/overlay-handlers.ts';
import { runCni, type AgentCall } from '../../../agent/cni/cni-commands.ts';
import {
  cniExecRequest, endpointsRequest, initRequest, joinRequest, networkCreateRequest, networkRef, removeNodeRequest, sandboxCreateRequest,
  sandboxDetachRequest, serviceCreateRequest, serviceRef, tokenRequest,
} from '../../../agent/api/schemas.ts';
import { Networks } from '../../../agent/overlay/networks.ts';
import { Services } from '../../../agent/overlay/services.ts';
import type { Allocations } from '../../../agent/overlay/spaces.ts';
import type { TableService } from '../../../agent/cluster/table-service.ts';
import { encodeNetwork } from '../../../agent/wire/objects-codec.ts';
import { ReplicatedTables } from '../../../controlplane/tables/index.ts';
import { parseToken, TokenError } from '../../../controlplane/security/token.ts';
import { OracleError, type FuzzTarget } from './target.ts';
import { material } from './material.ts';
import { formatToken } from '../../../controlplane/security/token.ts';

class Undecodable extends Error {}

/** The agent's side of a CNI run, answered as a working agent would: ADD gets the interface it asked for. */
const cniAgent: AgentCall = async (method, request) => {
  const r = request as { networks?: string[]; ifname?: string };
  if (method === 'SandboxCreate') return { interfaces: [{ network: r.networks?.[0] ?? '', ifname: r.ifname ?? '', mac: '02:00:00:00:00:01', ip: '100.64.0.2', prefixLength: 24, gateway: '100.64.0.1' }], nameserver: '169.254.77.1', defaultGateway: '169.254.77.1' };
  if (method === 'ContainerCheck') return { sandbox: { interfaces: [] }, problems: [] };
  return {};
};

/** CniExec's promise: whatever the request, an exit code and either nothing or JSON to print (an error with a code and a message). */
async function cniRun(request: { env: Record<string, string>; config: string }): Promise<unknown> {
  const { exitCode, output } = await runCni(request.env, request.config, cniAgent);
  if (exitCode !== 0 && exitCode !== 1) throw new OracleError(`exit code ${exitCode}`);
  if (output === '') return exitCode;
  let printed: { code?: unknown; msg?: unknown };
  try {
    printed = JSON.parse(output) as typeof printed;
  } catch (error) {
    throw new OracleError(`output is not JSON: ${(error as Error).message}`);
  }
  if (exitCode === 1 && (typeof printed.code !== 'number' || typeof printed.msg !== 'string')) throw new OracleError(`error without code and msg: ${output}`);
  return printed;
}
const cniConfig = (over: object = {}): string => JSON.stringify({ cniVersion: '1.0.0', name: 'weftnet', type: 'weft', network: 'app', ...over });
const cniEnv = (command: string, over: object = {}): Record<string, string> => ({ CNI_COMMAND: command, CNI_CONTAINERID: 'c1', CNI_NETNS: '/run/netns/c1', CNI_IFNAME: 'eth0', CNI_PATH: '/opt/cni/bin', ...over });

const SELF = 'c3'.repeat(16);

/** The overlay's validators over state that never changes: one network, allocations that succeed. */
function overlayLite(): { networks: Networks; services: Services } {
  const tables = new ReplicatedTables({ self: SELF });
  tables.set(Date.now(), 'networks', 'app', encodeNetwork({
    id: '0123456789ab', name: 'app', vni: 4097, subnet: '10.9.0.0/16', gateway: '10.9.0.1', internal: false, createdBy: SELF, poolSubnet: false,
  }));
  const service = { tables, set: () => [], delete: () => [] } as unknown as TableService;
  const allocations: Allocations = {
    define: () => undefined,
    allocate: async () => 7,
    allocateValue: async (_space, value) => value,
    free: async () => undefined,
    drop: () => undefined,
  };
  const networks = new Networks(service, allocations, '100.64.0.0/10', SELF);
  return { networks, services: new Services(service, allocations, SELF, () => networks.list(), async () => undefined) };
}

export async function apiTargets(): Promise<FuzzTarget[]> {
  const m = await material();
  const { networks, services } = overlayLite();
  const token = formatToken(m.token);
  const method = (name: string) => AgentApiService.service[name] as grpc.MethodDefinition<object, object>;
  const api = <T>(name: string, schema: z.ZodType<T>, requests: object[], then: (request: T) => unknown = (r) => r): FuzzTarget => {
    const definition = method(name);
    return {
      name: `api.${name}`, group: 'api', rejects: 'AgentError',
      seeds: requests.map((r) => definition.requestSerialize(r)),
      run: async (input) => {
        let request: unknown;
        try {
          request = definition.requestDeserialize(Buffer.from(input));
        } catch (error) {
          throw new Undecodable((error as Error).message);
        }
        return then(parse(schema, request));
      },
      isClean: (error) => error instanceof AgentError || error instanceof Undecodable,
    };
  };
  return [
    api('Init', initRequest, [{ defaultAddrPool: '' }, { defaultAddrPool: '100.64.0.0/10' }, { defaultAddrPool: '10.0.0.0/8' }]),
    api('Join', joinRequest, [{ token, address: '198.18.0.1' }, { token, address: '198.18.0.1:2377' }], (r) => {
      try {
        return parseToken(r.token);
      } catch (error) {
        if (error instanceof TokenError) throw badRequest(error.message);
        throw error;
      }
    }),
    api('Token', tokenRequest, [{ rotate: true }, { rotate: false }]),
    api('RemoveNode', removeNodeRequest, [{ node: 'h3' }, { node: 'a1a1' }]),
    api('NetworkCreate', networkCreateRequest, [
      { name: 'net1', subnet: '', vni: 0, internal: false }, { name: 'priv', subnet: '10.10.0.0/24', vni: 4096, internal: true }, { name: 'pooled', subnet: '100.64.9.0/24', vni: 0, internal: false },
    ], (r) => networks.create(r)),
    api('NetworkInspect', networkRef, [{ name: 'app' }, { name: 'nothing' }]),
    api('SandboxCreate', sandboxCreateRequest, [
      { networks: ['app'], name: 'web-1', aliases: ['front'], netns: '', command: ['sleep', '60'], services: ['web'] },
      { networks: ['app', 'priv'], name: '', aliases: [], netns: '/proc/1/ns/net', command: [], services: [] },
    ]),
    api('SandboxDetach', sandboxDetachRequest, [{ netns: 'weft-0011aabb', network: '' }, { netns: '/run/netns/x', network: 'app' }]),
    api('ServiceCreate', serviceCreateRequest, [
      { name: 'web', network: 'app', ports: [{ port: 80, protocol: 'tcp' }], mode: '', health: 'http:80/healthz' },
      { name: 'db', network: 'app', ports: [{ port: 5432, protocol: 'tcp' }, { port: 53, protocol: 'udp' }], mode: 'dnsrr', health: 'tcp:5432' },
    ], (r) => services.create({ ...r, network: networks.require(r.network) })),
    api('ServiceInspect', serviceRef, [{ name: 'web' }]),
    api('Endpoints', endpointsRequest, [{ network: '' }, { network: 'app' }]),
    api('CniExec', cniExecRequest, [
      { env: cniEnv('ADD', { CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAME=web-0' }), config: cniConfig({ args: { cni: { aliases: ['w'] } }, runtimeConfig: { bandwidth: { egressRate: 1_000_000, egressBurst: 100_000 } } }) },
      { env: cniEnv('DEL', { CNI_NETNS: '' }), config: cniConfig() },
      { env: cniEnv('CHECK'), config: cniConfig({ cniVersion: '0.4.0' }) },
      { env: { CNI_COMMAND: 'GC', CNI_PATH: '/opt/cni/bin' }, config: cniConfig({ cniVersion: '1.1.0', 'cni.dev/valid-attachments': [{ containerID: 'c1', ifname: 'eth0' }] }) },
      { env: { CNI_COMMAND: 'STATUS' }, config: cniConfig({ cniVersion: '1.1.0' }) },
    ], cniRun),
  ];
}
