// The CNI plugin's own logic: configuration and environment parsing (each
// problem with the spec's code), result building, and the module staying free
// of the agent's code (it runs once per container start).
import test from 'ava';
import { execa } from 'execa';
import { fileURLToPath } from 'node:url';
import { parseCniArgs, parseConfig, parseEnv } from '../../agent/cni/cni-config.ts';
import { CniError } from '../../agent/cni/cni-error.ts';
import { buildResult } from '../../agent/cni/cni-result.ts';
import { runCni } from '../../agent/cni/main.ts';

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

test('errors are CNI error JSON on stdout with a non-zero exit; VERSION needs no config', async (t) => {
  const out: string[] = [];
  t.is(await runCni({ CNI_COMMAND: 'VERSION' }, () => '', (s) => out.push(s)), 0);
  t.deepEqual(JSON.parse(out[0]!), { cniVersion: '1.0.0', supportedVersions: ['0.4.0', '1.0.0', '1.1.0'] });
  out.length = 0;
  t.is(await runCni({ ...env }, () => JSON.stringify({ ...good, cniVersion: '0.4.0', type: 'x' }), (s) => out.push(s)), 1);
  const error = JSON.parse(out[0]!) as { cniVersion: string; code: number; msg: string };
  t.is(error.code, 7);
  t.is(error.cniVersion, '1.0.0');
  t.regex(error.msg, /type is "x"/);
});

test('the plugin loads no agent, libp2p, dataplane nor gRPC library code', async (t) => {
  // Which modules a VERSION run loads: a hook prints every resolved URL to stderr.
  const main = fileURLToPath(new URL('../../agent/cni/entry.mjs', import.meta.url));
  const hook = `data:text/javascript,${encodeURIComponent("import{registerHooks}from'node:module';registerHooks({resolve(s,c,n){const r=n(s,c);process.stderr.write(r.url+'\\n');return r}})")}`;
  const r = await execa(process.execPath, ['--disable-warning=ExperimentalWarning', '--import', hook, main], { env: { CNI_COMMAND: 'VERSION' }, reject: false });
  t.is(r.exitCode, 0, String(r.stderr));
  const loaded = String(r.stderr).split('\n');
  t.true(loaded.some((u) => u.includes('/agent/api/client.ts')), 'control: the hook sees the client');
  t.deepEqual(loaded.filter((u) => /\/(agent\/(daemon|cluster|overlay|services)|dataplane)\/|libp2p|@grpc\/|protobufjs|^node:http2$/.test(u)), []);
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

test('STATUS without an agent is code 50 naming the network and the socket', async (t) => {
  const out: string[] = [];
  const config = { ...good, cniVersion: '1.1.0', socket: '/nonexistent/weft.sock' };
  t.is(await runCni({ CNI_COMMAND: 'STATUS', CNI_PATH: '/opt/cni/bin' }, () => JSON.stringify(config), (s) => out.push(s)), 1);
  const error = JSON.parse(out[0]!) as { cniVersion: string; code: number; msg: string };
  t.is(error.code, 50);
  t.is(error.cniVersion, '1.1.0');
  t.regex(error.msg, /network blue now: cannot reach the weft agent at \/nonexistent\/weft.sock/);
});
