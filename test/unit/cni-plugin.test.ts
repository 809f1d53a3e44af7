// The CNI commands' logic, which the agent runs for the plugin (CniExec):
// configuration and environment parsing (each problem with the spec's code),
// the agent calls each command makes and how their failures map to CNI
// codes, and result building. The plugin itself: test/unit/cni-pipe.test.ts.
import test from 'ava';
import { parseCniArgs, parseConfig, parseEnv } from '../../agent/cni/cni-config.ts';
import { CniError } from '../../agent/cni/cni-error.ts';
import { buildResult } from '../../agent/cni/cni-result.ts';
import { runCni, type AgentCall } from '../../agent/cni/cni-commands.ts';
import { STATUS } from '../../agent/api/json-line.ts';

const good = { cniVersion: '1.0.0', name: 'weftnet', type: 'weft', network: 'blue' };
const env = { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'abc123', CNI_NETNS: '/run/netns/x', CNI_IFNAME: 'eth0', CNI_PATH: '/opt/cni/bin' };
const codeOf = (fn: () => unknown): number | undefined => {
  try {
    fn();
  } catch (error) {
    if (error instanceof CniError) return error.code;
    throw error;
  }
  return undefined;
};

test('a configuration gets the default socket and its args.cni and aliases capability', (t) => {
  const c = parseConfig(JSON.stringify({ ...good, args: { cni: { name: 'web', aliases: ['w1'], services: ['api'] } }, runtimeConfig: { aliases: { weftnet: ['w2'], other: ['x'] } } }));
  t.is(c.socket, '/run/weft/weft.sock');
  t.is(c.endpointName, 'web');
  t.deepEqual(c.aliases, ['w1', 'w2']);
  t.deepEqual(c.services, ['api']);
});

test('configuration problems have the spec\'s codes', (t) => {
  t.is(codeOf(() => parseConfig('{not json')), 6);
  t.is(codeOf(() => parseConfig('[]')), 6);
  t.is(codeOf(() => parseConfig(JSON.stringify({ ...good, cniVersion: '0.2.0' }))), 1);
  t.is(codeOf(() => parseConfig(JSON.stringify({ ...good, cniVersion: '1.2.0' }))), 1);
  t.is(codeOf(() => parseConfig(JSON.stringify({ ...good, type: 'bridge' }))), 7);
  t.is(codeOf(() => parseConfig(JSON.stringify({ ...good, network: undefined }))), 7);
  t.is(codeOf(() => parseConfig(JSON.stringify({ ...good, network: '../etc' }))), 7);
  t.is(codeOf(() => parseConfig(JSON.stringify({ ...good, socket: 'relative.sock' }))), 7);
  t.is(codeOf(() => parseConfig(JSON.stringify({ ...good, args: { cni: { aliases: ['bad name'] } } }))), 7);
});

test('names follow the agent\'s rules: a service is one DNS label, an interface does not start with "-"', (t) => {
  // A dotted service name is no service the agent could have (lib/names.ts): refused here, with the rule.
  t.is(codeOf(() => parseConfig(JSON.stringify({ ...good, args: { cni: { services: ['api.v1'] } } }))), 7);
  t.notThrows(() => parseConfig(JSON.stringify({ ...good, args: { cni: { aliases: ['api.v1'] } } })), 'aliases may hold dots');
  t.throws(() => parseCniArgs('services=api.v1'), { message: /CNI_ARGS services: "api.v1" must be .*DNS label/ });
  // `ip` would read "-x" as an option; the data plane refuses it, so the plugin does too, before any call.
  t.throws(() => parseEnv({ ...env, CNI_IFNAME: '-x' }), { message: /CNI_IFNAME "-x" is not an interface name/ });
  t.is(parseEnv({ ...env, CNI_IFNAME: '_x.1' }).ifname, '_x.1');
});

test('the environment is checked: command, container ID, interface name, namespace, CNI_PATH', (t) => {
  t.is(parseEnv(env).ifname, 'eth0');
  t.is(codeOf(() => parseEnv({ ...env, CNI_COMMAND: 'GC' })), 4);
  t.is(codeOf(() => parseEnv({ ...env, CNI_CONTAINERID: '' })), 4);
  t.is(codeOf(() => parseEnv({ ...env, CNI_CONTAINERID: '-x' })), 4);
  t.is(codeOf(() => parseEnv({ ...env, CNI_CONTAINERID: 'a/b' })), 4);
  t.is(codeOf(() => parseEnv({ ...env, CNI_IFNAME: 'a-very-long-interface' })), 4);
  t.is(codeOf(() => parseEnv({ ...env, CNI_IFNAME: 'eth 0' })), 4);
  t.is(codeOf(() => parseEnv({ ...env, CNI_IFNAME: '..' })), 4);
  t.is(codeOf(() => parseEnv({ ...env, CNI_NETNS: '' })), 4, 'ADD needs the namespace');
  t.is(codeOf(() => parseEnv({ ...env, CNI_NETNS: 'relative' })), 4);
  t.is(codeOf(() => parseEnv({ ...env, CNI_PATH: undefined })), 4);
  t.is(parseEnv({ ...env, CNI_COMMAND: 'DEL', CNI_NETNS: '' }).netns, '', 'DEL may come without one');
});

test('CNI_ARGS: pod name or name, comma lists, unknown keys only with IgnoreUnknown', (t) => {
  t.deepEqual(parseCniArgs('K8S_POD_NAME=web-0;K8S_POD_NAMESPACE=default'), { name: 'web-0', aliases: [], services: [] });
  t.deepEqual(parseCniArgs('name=a;K8S_POD_NAME=b;aliases=x,y;services=api'), { name: 'a', aliases: ['x', 'y'], services: ['api'] });
  t.is(codeOf(() => parseCniArgs('FOO=1')), 4);
  t.is(parseCniArgs('IgnoreUnknown=1;FOO=1').name, undefined);
  t.is(codeOf(() => parseCniArgs('novalue')), 4);
  t.is(codeOf(() => parseCniArgs('name=has space')), 4);
  t.is(codeOf(() => parseCniArgs('aliases=ok,not/ok')), 4);
});

const reply = {
  interfaces: [
    { network: 'red', ifname: 'eth0', mac: '02:00:00:00:00:01', ip: '100.64.1.2', prefixLength: 24, gateway: '100.64.1.1' },
    { network: 'blue', ifname: 'net1', mac: '02:00:00:00:00:02', ip: '100.64.2.7', prefixLength: 24, gateway: '100.64.2.1' },
  ],
  nameserver: '169.254.77.1',
  defaultGateway: '169.254.77.1',
};

test('the result names the requested interface with its address, route and nameserver', (t) => {
  t.deepEqual(buildResult('1.0.0', reply, 'blue', 'net1', '/run/netns/c'), {
    cniVersion: '1.0.0',
    interfaces: [{ name: 'net1', mac: '02:00:00:00:00:02', sandbox: '/run/netns/c' }],
    ips: [{ address: '100.64.2.7/24', gateway: '100.64.2.1', interface: 0 }],
    routes: [{ dst: '0.0.0.0/0', gw: '169.254.77.1' }],
    // As a `weft run` sandbox's resolv.conf, plus the network as search domain (`web` -> `web.blue`).
    dns: { nameservers: ['169.254.77.1'], search: ['blue'], options: ['ndots:0'] },
  });
  t.deepEqual(buildResult('0.4.0', reply, 'blue', 'net1', '/run/netns/c').ips[0], { address: '100.64.2.7/24', gateway: '100.64.2.1', interface: 0, version: '4' });
  const internal = buildResult('1.0.0', { ...reply, nameserver: '', defaultGateway: '' }, 'red', 'eth0', '/p');
  t.deepEqual(internal.routes, []);
  t.deepEqual(internal.dns, {});
  t.is(codeOf(() => buildResult('1.0.0', reply, 'blue', 'eth0', '/p')), 100, 'a reply without the interface is an error, not an empty result');
});

/** An agent whose methods answer from `replies` (a function throws, an object is the reply), recording every call. */
function fakeAgent(replies: Record<string, object | (() => never)>): { call: AgentCall; calls: Array<[string, object]> } {
  const calls: Array<[string, object]> = [];
  const call: AgentCall = async (method, request) => {
    calls.push([method, request]);
    const reply = replies[method];
    if (reply === undefined) throw new Error(`the test's agent has no ${method}`);
    return typeof reply === 'function' ? reply() : reply;
  };
  return { call, calls };
}
const failing = (code: number, message: string) => (): never => {
  throw Object.assign(new Error(message), { code });
};

test('errors are CNI error JSON with a non-zero exit; VERSION needs no config and no agent', async (t) => {
  const agent = fakeAgent({});
  const version = await runCni({ CNI_COMMAND: 'VERSION' }, '', agent.call);
  t.is(version.exitCode, 0);
  t.deepEqual(JSON.parse(version.output), { cniVersion: '1.0.0', supportedVersions: ['0.4.0', '1.0.0', '1.1.0'] });
  const bad = await runCni({ ...env }, JSON.stringify({ ...good, cniVersion: '0.4.0', type: 'x' }), agent.call);
  t.is(bad.exitCode, 1);
  const error = JSON.parse(bad.output) as { cniVersion: string; code: number; msg: string };
  t.is(error.code, 7);
  t.is(error.cniVersion, '1.0.0');
  t.regex(error.msg, /type is "x"/);
  t.is((JSON.parse((await runCni({}, '', agent.call)).output) as { code: number }).code, 4, 'no CNI_COMMAND');
  t.deepEqual(agent.calls, [], 'nothing refused here reached the agent');
});

test('ADD asks for the sandbox with the configuration\'s and CNI_ARGS\' names, and answers the result', async (t) => {
  const agent = fakeAgent({ SandboxCreate: { interfaces: [reply.interfaces[1]!], nameserver: '', defaultGateway: '' } });
  const config = { ...good, args: { cni: { aliases: ['w1'], services: ['api'] } }, runtimeConfig: { bandwidth: { egressRate: 1_000_000, egressBurst: 100_000 } } };
  const r = await runCni({ ...env, CNI_IFNAME: 'net1', CNI_ARGS: 'name=web;aliases=w1,w2' }, JSON.stringify(config), agent.call);
  t.is(r.exitCode, 0, r.output);
  t.is((JSON.parse(r.output) as { ips: Array<{ address: string }> }).ips[0]?.address, '100.64.2.7/24');
  t.deepEqual(agent.calls, [['SandboxCreate', {
    networks: ['blue'], name: 'web', aliases: ['w1', 'w2'], netns: '/run/netns/x', command: [], services: ['api'], containerId: 'abc123', ifname: 'net1',
    bandwidth: { ingressRate: 0, ingressBurst: 0, egressRate: 1_000_000, egressBurst: 100_000 }, cniNetwork: 'weftnet',
  }]]);
});

test('agent refusals map to CNI codes: a bad request is 7, CHECK of an unknown container 3, drift 101, a failure 100', async (t) => {
  const codeFrom = async (command: string, replies: Parameters<typeof fakeAgent>[0], config: object = good): Promise<number> =>
    (JSON.parse((await runCni({ ...env, CNI_COMMAND: command }, JSON.stringify(config), fakeAgent(replies).call)).output || '{"code":0}') as { code: number }).code;
  t.is(await codeFrom('ADD', { SandboxCreate: failing(STATUS.notFound, 'no network blue') }), 7);
  t.is(await codeFrom('ADD', { SandboxCreate: failing(STATUS.internal, 'ip failed') }), 100);
  t.is(await codeFrom('DEL', { ContainerDetach: {} }), 0);
  t.is(await codeFrom('DEL', { ContainerDetach: failing(STATUS.invalidArgument, 'bad key') }), 7);
  t.is(await codeFrom('CHECK', { ContainerCheck: failing(STATUS.notFound, 'no container abc123') }), 3);
  t.is(await codeFrom('CHECK', { ContainerCheck: { sandbox: reply, problems: [] } }), 101, 'eth0 is on red, the configuration says blue');
  t.is(await codeFrom('CHECK', { ContainerCheck: { sandbox: { interfaces: [] }, problems: ['eth0 is missing'] } }), 101);
  t.is(await codeFrom('CHECK', { ContainerCheck: { sandbox: { interfaces: [] }, problems: [] } }), 0);
  const v11 = { ...good, cniVersion: '1.1.0', 'cni.dev/valid-attachments': [] };
  t.is(await codeFrom('STATUS', { NetworkInspect: failing(STATUS.notFound, 'no network blue') }, v11), 50);
  t.is(await codeFrom('STATUS', { NetworkInspect: {} }, v11), 0);
  t.is(await codeFrom('GC', { ContainerGc: failing(STATUS.notFound, 'no network blue') }, v11), 0, 'a network that is gone has nothing to collect');
  t.is(await codeFrom('GC', { ContainerGc: failing(STATUS.internal, 'oops') }, v11), 100);
});

test('a failure inside the CNI logic is code 100 for the runtime and reported for the agent\'s log; an agent refusal is not', async (t) => {
  const heard: Error[] = [];
  const onUnexpected = (error: Error) => heard.push(error);
  // A reply of the wrong shape makes buildResult throw a TypeError: a bug of the agent, not the request's.
  const broken = fakeAgent({ SandboxCreate: { interfaces: 'not a list', nameserver: '', defaultGateway: '' } });
  const r = await runCni(env, JSON.stringify(good), broken.call, onUnexpected);
  t.like(JSON.parse(r.output), { code: 100 });
  t.is(heard.length, 1);
  const refused = fakeAgent({ SandboxCreate: failing(STATUS.internal, 'ip failed') });
  await runCni(env, JSON.stringify(good), refused.call, onUnexpected);
  await runCni({ ...env, CNI_IFNAME: '-x' }, JSON.stringify(good), refused.call, onUnexpected);
  t.is(heard.length, 1, 'the API logs its own failures, and a bad request is the runtime\'s');
});

test('CNI 1.1: STATUS and GC need a 1.1.0 configuration; GC reads its valid attachments strictly', (t) => {
  const v11 = { ...good, cniVersion: '1.1.0' };
  const valid = [{ containerID: 'abc123', ifname: 'eth0' }, { containerID: 'def', ifname: 'net1', extra: 'ignored' }];
  t.deepEqual(parseConfig(JSON.stringify({ ...v11, 'cni.dev/valid-attachments': valid }), 'GC').validAttachments, [{ containerId: 'abc123', ifname: 'eth0' }, { containerId: 'def', ifname: 'net1' }]);
  t.notThrows(() => parseConfig(JSON.stringify(v11), 'STATUS'));
  t.is(codeOf(() => parseConfig(JSON.stringify(good), 'STATUS')), 1, 'a 1.0.0 configuration has no STATUS');
  t.is(codeOf(() => parseConfig(JSON.stringify({ ...good, 'cni.dev/valid-attachments': [] }), 'GC')), 1);
  t.is(codeOf(() => parseConfig(JSON.stringify(v11), 'GC')), 7, 'GC without its list would release everything: refused');
  // A malformed entry must not make GC release the attachment it was meant to keep.
  t.is(codeOf(() => parseConfig(JSON.stringify({ ...v11, 'cni.dev/valid-attachments': [{ containerID: '-x', ifname: 'eth0' }] }), 'GC')), 7);
  t.is(codeOf(() => parseConfig(JSON.stringify({ ...v11, 'cni.dev/valid-attachments': [{ containerID: 'abc' }] }), 'GC')), 7);
  t.is(codeOf(() => parseConfig(JSON.stringify({ ...v11, 'cni.dev/valid-attachments': 'all' }), 'GC')), 7);
  // STATUS and GC are about the network, not a container: no container environment.
  t.is(codeOf(() => parseEnv({ CNI_COMMAND: 'STATUS' })), 4);
});
