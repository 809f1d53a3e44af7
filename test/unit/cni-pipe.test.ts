// The CNI plugin as a pipe (agent/cni/plugin.py, which bin/weft-cni links
// to): run as a runtime runs it, against the agent's real socket server,
// proto codec and CniExec handler (the inner methods answered by this test,
// the requests checked with the agent's own schemas). It runs isolated from
// the runtime's Python settings; it speaks the JSON-line framing the agent
// reads; what it checks itself (command, stdin, socket, variable sizes) and
// what it answers when no agent does are today's answers; its copies of the
// agent's constants match the agent's.
import test from 'ava';
import { execa } from 'execa';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AgentApiService } from '../../agent/wire/agent-api-service.ts';
import { listenApiSocket, throughProtoCodec, type ApiSocket } from '../../agent/api/api-socket.ts';
import { cniHandlers } from '../../agent/api/cni-handler.ts';
import { parse } from '../../agent/api/overlay-handlers.ts';
import { containerRef, MAX_CNI_CONFIG_BYTES, MAX_CNI_ENV_VALUE_BYTES, sandboxCreateRequest } from '../../agent/api/schemas.ts';
import { AgentError } from '../../agent/api/errors.ts';
import { DEFAULT_API_SOCKET } from '../../agent/api/defaults.ts';
import { MAX_LINE_BYTES, STATUS } from '../../agent/api/json-line.ts';
import { COMMANDS, SUPPORTED_VERSIONS } from '../../agent/cni/cni-config.ts';
import { CNI_CODE } from '../../agent/cni/cni-error.ts';
import { AgentClient, ApiCallError } from '../../agent/api/client.ts';

const PLUGIN = fileURLToPath(new URL('../../bin/weft-cni', import.meta.url));
const PLUGIN_DIR = fileURLToPath(new URL('../../agent/cni/', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'weft-cni-pipe-'));
const socket = join(dir, 'api.sock');
const oldAgentSocket = join(dir, 'old.sock');
const absent = join(dir, 'absent.sock');
const seen: Array<[string, unknown]> = [];

const sandbox = { id: 's1', netns: '/run/netns/x', pid: 0, endpoints: [], interfaces: [{ network: 'blue', ifname: 'eth0', mac: '02:00:00:00:00:07', ip: '100.64.2.7', prefixLength: 24, gateway: '100.64.2.1' }], nameserver: '169.254.77.1', defaultGateway: '169.254.77.1' };
type Handler = (request: unknown) => Promise<object> | object;
/** The agent's methods a CNI run uses, answered here; the requests go through the agent's schemas as the real handlers' do. */
const handlers: Record<string, Handler> = {
  SandboxCreate: (req) => {
    seen.push(['SandboxCreate', parse(sandboxCreateRequest, req)]);
    return sandbox;
  },
  ContainerDetach: (req) => {
    seen.push(['ContainerDetach', parse(containerRef, req)]);
    return {};
  },
  ContainerCheck: (req) => {
    seen.push(['ContainerCheck', parse(containerRef, req)]);
    throw new AgentError(STATUS.notFound, 'no container attachment nosuch/eth0');
  },
};
/** As api-server.ts's `run`: an unknown method is UNIMPLEMENTED. */
const serve = (table: Record<string, Handler>) => async (method: string, request: unknown): Promise<object> => {
  const handler = Object.hasOwn(table, method) ? table[method] : undefined;
  if (!handler) throw new AgentError(STATUS.unimplemented, `unknown API method ${method}`);
  return handler(request);
};
const viaApi = throughProtoCodec(AgentApiService.service, serve(handlers));
Object.assign(handlers, cniHandlers(viaApi));

const listeners: ApiSocket[] = [];
test.before(async () => {
  const refuse = (s: { destroy(): void }) => s.destroy();
  listeners.push(await listenApiSocket(socket, { http2: refuse, json: viaApi }));
  // An agent from before CniExec: the method is in agent.proto, but it has no handler.
  const { CniExec: _, ...older } = handlers;
  listeners.push(await listenApiSocket(oldAgentSocket, { http2: refuse, json: throughProtoCodec(AgentApiService.service, serve(older)) }));
});
test.after.always(() => {
  for (const l of listeners) l.close();
  rmSync(dir, { recursive: true, force: true });
});

const config = (over: object = {}): object => ({ cniVersion: '1.0.0', name: 'weftnet', type: 'weft', network: 'blue', socket, ...over });
const env = { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'ctr1', CNI_NETNS: '/run/netns/x', CNI_IFNAME: 'eth0', CNI_PATH: '/opt/cni/bin' };

/** bin/weft-cni as a runtime runs it: only the variables given, stdin, and a deadline. */
async function runPlugin(vars: Record<string, string>, stdin: string) {
  const r = await execa(PLUGIN, [], { reject: false, timeout: 60_000, input: stdin, extendEnv: false, env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', ...vars } });
  const out = String(r.stdout).trim();
  return { exitCode: r.exitCode, json: out === '' ? {} : (JSON.parse(out) as Record<string, unknown>), stdout: String(r.stdout), stderr: String(r.stderr) };
}

/** Runs `code` in Python with the plugin importable (as a module: its main does not run); its stdout as JSON. */
async function inPython(code: string): Promise<unknown> {
  const r = await execa('/usr/bin/python3', ['-ISB', '-c', `import sys, json\nsys.path.insert(0, ${JSON.stringify(PLUGIN_DIR)})\nimport plugin\n${code}`], { timeout: 60_000 });
  return JSON.parse(r.stdout);
}

test.serial('ADD through bin/weft-cni: one CniExec call, the agent\'s result on stdout', async (t) => {
  const r = await runPlugin({ ...env, CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAME=pod1', UNRELATED: 'not forwarded' }, JSON.stringify(config()));
  t.is(r.exitCode, 0, r.stdout + r.stderr);
  t.deepEqual(r.json, {
    cniVersion: '1.0.0',
    interfaces: [{ name: 'eth0', mac: '02:00:00:00:00:07', sandbox: '/run/netns/x' }],
    ips: [{ address: '100.64.2.7/24', gateway: '100.64.2.1', interface: 0 }],
    routes: [{ dst: '0.0.0.0/0', gw: '169.254.77.1' }],
    dns: { nameservers: ['169.254.77.1'], search: ['blue'], options: ['ndots:0'] },
  });
  t.like(seen.at(-1), ['SandboxCreate', { networks: ['blue'], name: 'pod1', netns: '/run/netns/x', containerId: 'ctr1', ifname: 'eth0', cniNetwork: 'weftnet' }]);
});

test.serial('DEL prints nothing and exits 0; the agent\'s own checks answer with their codes', async (t) => {
  const del = await runPlugin({ ...env, CNI_COMMAND: 'DEL', CNI_NETNS: '' }, JSON.stringify(config()));
  t.is(del.exitCode, 0, del.stdout + del.stderr);
  t.is(del.stdout, '');
  t.deepEqual(seen.at(-1), ['ContainerDetach', { containerId: 'ctr1', ifname: 'eth0' }]);
  const unknown = await runPlugin({ ...env, CNI_COMMAND: 'CHECK', CNI_CONTAINERID: 'nosuch' }, JSON.stringify(config()));
  t.is(unknown.exitCode, 1);
  t.like(unknown.json, { cniVersion: '1.0.0', code: 3, msg: 'no container attachment nosuch/eth0' });
  const badIfname = await runPlugin({ ...env, CNI_IFNAME: '-x' }, JSON.stringify(config({ cniVersion: '0.4.0' })));
  t.like(badIfname.json, { cniVersion: '0.4.0', code: 4 });
  t.regex(String(badIfname.json['msg']), /CNI_IFNAME "-x" is not an interface name/);
  t.like((await runPlugin(env, JSON.stringify(config({ type: 'bridge' })))).json, { code: 7 });
  t.like((await runPlugin(env, JSON.stringify(config({ cniVersion: '9.9.9' })))).json, { code: 1, cniVersion: '1.0.0' });
});

test.serial('VERSION, a missing or unknown command, stdin that is no JSON object, and a bad socket are answered without the agent', async (t) => {
  const version = await runPlugin({ CNI_COMMAND: 'VERSION' }, '');
  t.is(version.exitCode, 0);
  t.deepEqual(version.json, { cniVersion: '1.0.0', supportedVersions: ['0.4.0', '1.0.0', '1.1.0'] });
  t.deepEqual((await runPlugin({}, '')).json, { cniVersion: '1.0.0', code: 4, msg: 'CNI_COMMAND is not set' });
  t.deepEqual((await runPlugin({ CNI_COMMAND: 'FOO' }, '')).json, { cniVersion: '1.0.0', code: 4, msg: 'CNI_COMMAND "FOO" is not one of ADD, DEL, CHECK, VERSION, STATUS, GC' });
  t.like((await runPlugin(env, '{not json')).json, { code: 6, msg: 'cannot decode the network configuration on stdin' });
  t.like((await runPlugin(env, '[]')).json, { code: 6, msg: 'the network configuration on stdin must be a JSON object' });
  t.like((await runPlugin(env, '['.repeat(100_000))).json, { code: 6, msg: 'cannot decode the network configuration on stdin' }, 'nesting deeper than Python recurses is still a decode error');
  // Bytes that are not UTF-8 count as the agent counts them (U+FFFD, 3 bytes each), so the agent never refuses what passed here.
  const notUtf8 = await inPython(`print(json.dumps(plugin.run_plugin({'CNI_COMMAND': 'ADD', 'CNI_ARGS': '\\udcff' * 30000}, lambda: ${JSON.stringify(JSON.stringify(config({ socket: absent })))})))`);
  t.like(JSON.parse((notUtf8 as [number, string])[1]), { code: 4, msg: 'CNI_ARGS is over 65536 bytes' });
  for (const [bad, reason] of [['relative.sock', 'absolute path'], [5, 'absolute path'], [`/${'x'.repeat(107)}`, 'under 108 characters']] as const) {
    const r = await runPlugin(env, JSON.stringify(config({ socket: bad })));
    t.is(r.exitCode, 1);
    t.like(r.json, { code: 7, msg: 'invalid network configuration' });
    t.regex(String(r.json['details']), new RegExp(`socket must be .*${reason}`));
  }
  const unreadable = await inPython(`def unreadable():\n    raise BlockingIOError(11, 'Resource temporarily unavailable')\nprint(json.dumps(plugin.run_plugin({'CNI_COMMAND': 'ADD'}, unreadable)))`);
  t.like(JSON.parse((unreadable as [number, string])[1]), { code: 5, msg: 'cannot read the network configuration from stdin', details: 'Resource temporarily unavailable' });
});

test.serial('no agent: ADD, DEL, CHECK and GC are 11 (try again later), STATUS is 50, with the socket named', async (t) => {
  for (const command of ['ADD', 'DEL', 'CHECK']) {
    const r = await runPlugin({ ...env, CNI_COMMAND: command }, JSON.stringify(config({ socket: absent })));
    t.is(r.exitCode, 1);
    t.deepEqual(r.json, { cniVersion: '1.0.0', code: 11, msg: `cannot reach the weft agent at ${absent}`, details: 'start it with `weft agent` (as root), or set "socket" in the network configuration' });
  }
  const v11 = config({ cniVersion: '1.1.0', socket: absent, 'cni.dev/valid-attachments': [] });
  t.like((await runPlugin({ CNI_COMMAND: 'GC', CNI_PATH: '/opt/cni/bin' }, JSON.stringify(v11))).json, { cniVersion: '1.1.0', code: 11 });
  const status = await runPlugin({ CNI_COMMAND: 'STATUS', CNI_PATH: '/opt/cni/bin' }, JSON.stringify(v11));
  t.is(status.exitCode, 1);
  t.like(status.json, { cniVersion: '1.1.0', code: 50, msg: `weft cannot attach containers to network blue now: cannot reach the weft agent at ${absent}` });
});

test.serial('an agent without CniExec is named as older; CniExec refuses what is not a CNI run: the plugin says 7, or 4 for its environment', async (t) => {
  const older = await runPlugin(env, JSON.stringify(config({ socket: oldAgentSocket })));
  t.is(older.json['code'], 100);
  t.regex(String(older.json['msg']), /does not run CNI commands \(no CniExec\): it is older than this plugin/);
  const client = new AgentClient(socket);
  const refused = async (request: object, reason: RegExp): Promise<void> => {
    const error = await t.throwsAsync(client.call('CniExec', request), { instanceOf: ApiCallError });
    t.is(error.code, STATUS.invalidArgument, error.message);
    t.regex(error.message, reason);
  };
  await refused({ env: { PATH: '/bin' }, config: '{}' }, /CNI_\* variables only/);
  await refused({ env: { CNI_ARGS: 'x'.repeat(64 * 1024 + 1) }, config: '{}' }, /an env value is at most 65536 bytes/);
  await refused({ env: Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`CNI_X${i}`, ''])), config: '{}' }, /at most 16 variables/);
  const big = JSON.stringify(config({ padding: 'x'.repeat(MAX_CNI_CONFIG_BYTES) }));
  await refused({ env, config: big }, /network configuration \(config\) is at most 1048576 bytes/);
  const r = await runPlugin(env, big);
  t.like(r.json, { code: 7 });
  t.regex(String(r.json['msg']), /at most 1048576 bytes/);
  // A CNI_ARGS the agent would refuse is the environment's fault: the spec's code 4, not 7.
  const longArgs = await runPlugin({ ...env, CNI_ARGS: 'x'.repeat(64 * 1024 + 1) }, JSON.stringify(config()));
  t.deepEqual(longArgs.json, { cniVersion: '1.0.0', code: 4, msg: 'CNI_ARGS is over 65536 bytes' });
});

test('the plugin\'s copies of the agent\'s constants are the agent\'s', async (t) => {
  const names = ['SUPPORTED_VERSIONS', 'COMMANDS', 'DEFAULT_API_SOCKET', 'MAX_LINE_BYTES', 'MAX_ENV_VALUE_BYTES', 'STATUS', 'CNI_CODE'];
  const copy = await inPython(`print(json.dumps({name: getattr(plugin, name) for name in ${JSON.stringify(names)}}))`) as Record<string, unknown>;
  t.deepEqual(copy['SUPPORTED_VERSIONS'], SUPPORTED_VERSIONS);
  t.is(copy['DEFAULT_API_SOCKET'], DEFAULT_API_SOCKET);
  t.is(copy['MAX_LINE_BYTES'], MAX_LINE_BYTES);
  t.is(copy['MAX_ENV_VALUE_BYTES'], MAX_CNI_ENV_VALUE_BYTES);
  for (const [name, code] of Object.entries(copy['STATUS'] as Record<string, number>)) t.is(code, STATUS[name as keyof typeof STATUS], name);
  for (const [name, code] of Object.entries(copy['CNI_CODE'] as Record<string, number>)) t.is(code, CNI_CODE[name as keyof typeof CNI_CODE], name);
  t.deepEqual(copy['COMMANDS'], COMMANDS, 'a command refused here is refused with the list the agent would give');
});

test('bin/weft-cni runs the plugin isolated: the runtime\'s Python variables are ignored', async (t) => {
  // A runtime's environment is not the plugin's to trust: a json.py on PYTHONPATH would run as root.
  const evil = join(dir, 'evil');
  mkdirSync(evil);
  writeFileSync(join(evil, 'json.py'), 'raise SystemExit("the runtime\'s PYTHONPATH was loaded")\n');
  const r = await runPlugin({ CNI_COMMAND: 'VERSION', PYTHONPATH: evil, PYTHONSTARTUP: join(evil, 'json.py'), PYTHONHOME: evil }, '');
  t.is(r.exitCode, 0, r.stderr);
  t.like(r.json, { cniVersion: '1.0.0' });
});
