#!/usr/bin/python3 -IS
# The `weft` CNI plugin (bin/weft-cni runs it): a pipe to the local agent.
# It sends the runtime's CNI_* environment and the network configuration,
# unread, in one CniExec call on the agent's API socket; the agent checks
# both, does the work and answers what to print and the exit code
# (agent/cni/cni-commands.ts, agent/api/cni-handler.ts).
#
# Why Python and not the project's Node: the plugin starts once per container
# network operation, and Node takes ~80-100 ms to start here where Python with
# -I -S (no site, no user paths, no PYTHON* variables) takes ~20-35 ms, and
# this plugin ~50 ms with its imports (docs/containers.md, "Timing"); the
# agent needs Debian's python3 already (its nft workers). The plugin holds no
# logic to share with the agent: everything past the checks below is the
# agent's.
#
# It checks only what it needs before it can ask the agent: the command
# (VERSION is answered here), that stdin is a JSON object, its "socket", and
# that each CNI_* value is within the agent's limit. When the agent cannot be
# reached it answers as the agent-side logic would have with a working
# configuration: 11 (try again later), 50 for STATUS.
#
# The framing is the agent API's JSON lines (agent/api/json-line.ts): one
# request line out, one reply line back, one call per connection.
# test/unit/cni-pipe.test.ts runs this file against the agent's real socket
# server and proto codec, and checks its constants against the agent's.
import _socket  # socket.py's C core: socket.py adds enum and selectors, ~5 ms of a ~45 ms start
import json
import os
import sys

# Same values as agent/cni/cni-config.ts, agent/api/json-line.ts, agent/api/defaults.ts,
# agent/api/schemas.ts, agent/cni/cni-error.ts (a unit test compares).
SUPPORTED_VERSIONS = ['0.4.0', '1.0.0', '1.1.0']
COMMANDS = ['ADD', 'DEL', 'CHECK', 'VERSION', 'STATUS', 'GC']
DEFAULT_API_SOCKET = '/run/weft/weft.sock'
MAX_LINE_BYTES = 4 * 1024 * 1024
MAX_ENV_VALUE_BYTES = 64 * 1024
STATUS = {'ok': 0, 'invalidArgument': 3, 'resourceExhausted': 8, 'unimplemented': 12}
CNI_CODE = {'invalidEnv': 4, 'io': 5, 'decode': 6, 'invalidConfig': 7, 'tryLater': 11, 'notAvailable': 50, 'agentFailed': 100}
# The variables the CNI spec gives a plugin: all the agent reads, and nothing else of the runtime's environment.
FORWARDED_ENV = ['CNI_COMMAND', 'CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME', 'CNI_ARGS', 'CNI_PATH']
# Longer than the agent's own limit on a command it runs (60 s, dataplane/exec.ts): an agent
# that is slow but working answers with its error first.
CALL_TIMEOUT_S = 120
MAX_SOCKET_PATH = 107  # sun_path holds 108 bytes with the terminating NUL


class CniError(Exception):
    def __init__(self, code, msg, details=''):
        super().__init__(msg)
        self.code = code
        self.msg = msg
        self.details = details

    def as_json(self, version):
        body = {'cniVersion': version, 'code': self.code, 'msg': self.msg}
        if self.details:
            body['details'] = self.details
        return body


class Unreachable(Exception):
    """The agent did not answer (no socket, refused, closed, timed out): the runtime should try again later."""


def command_of(env):
    command = env.get('CNI_COMMAND')
    if command in COMMANDS:
        return command
    if not command:
        raise CniError(CNI_CODE['invalidEnv'], 'CNI_COMMAND is not set')
    raise CniError(CNI_CODE['invalidEnv'], f'CNI_COMMAND "{command}" is not one of {", ".join(COMMANDS)}')


def decode(text):
    try:
        config = json.loads(text)
    except (ValueError, RecursionError) as error:
        raise CniError(CNI_CODE['decode'], 'cannot decode the network configuration on stdin', str(error)) from None
    if not isinstance(config, dict):
        raise CniError(CNI_CODE['decode'], 'the network configuration on stdin must be a JSON object')
    return config


def socket_of(config):
    """The agent's socket: checked here because the plugin connects to it before the agent can check anything."""
    path = config.get('socket')
    if path is None:
        path = DEFAULT_API_SOCKET
    if not isinstance(path, str) or not path.startswith('/'):
        problem = 'socket must be an absolute path'
    elif len(path.encode('utf-8', 'surrogateescape')) > MAX_SOCKET_PATH:
        problem = 'socket must be a unix socket path under 108 characters'
    else:
        return path
    raise CniError(CNI_CODE['invalidConfig'], 'invalid network configuration', f'✖ {problem}\n  → at socket')


def as_text(value):
    """Bytes that are not UTF-8 (os.environ keeps them as lone surrogates) as U+FFFD, the way the agent counts and reads them."""
    return value.encode('utf-8', 'surrogateescape').decode('utf-8', 'replace')


def forwarded_env(env):
    """The spec's variables, as the agent takes them; a value over the agent's limit is the environment's fault (4)."""
    forwarded = {key: as_text(env[key]) for key in FORWARDED_ENV if key in env}
    for key, value in forwarded.items():
        if len(value.encode('utf-8')) > MAX_ENV_VALUE_BYTES:
            raise CniError(CNI_CODE['invalidEnv'], f'{key} is over {MAX_ENV_VALUE_BYTES} bytes')
    return forwarded


def call_agent(path, method, request):
    """One call in the JSON-line framing; the parsed reply line. Raises Unreachable when there is no answer."""
    line = (json.dumps({'method': method, 'request': request}) + '\n').encode('utf-8', 'surrogatepass')
    try:
        conn = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        try:
            conn.settimeout(CALL_TIMEOUT_S)
            conn.connect(path)
            conn.sendall(line)
            body = read_line(conn, method)
        finally:
            conn.close()
    except TimeoutError:
        raise CniError(CNI_CODE['tryLater'], f'the weft agent at {path} did not answer {method} within {CALL_TIMEOUT_S} s',
                       'it took the call but did not finish it: see its log') from None
    except OSError as error:
        raise Unreachable(error.strerror or str(error)) from None
    try:
        return json.loads(body.decode('utf-8', 'replace'))
    except (ValueError, RecursionError) as error:
        raise CniError(CNI_CODE['agentFailed'], f"cannot read the weft agent's reply to {method}", str(error)) from None


def read_line(conn, method):
    chunks = []
    size = 0
    while True:
        chunk = conn.recv(65536)
        if not chunk:
            raise Unreachable('the agent closed the connection without answering')
        size += len(chunk)
        if size > MAX_LINE_BYTES:
            raise CniError(CNI_CODE['agentFailed'], f"the weft agent's reply to {method} exceeds {MAX_LINE_BYTES} bytes")
        chunks.append(chunk)
        if b'\n' in chunk:
            body = b''.join(chunks)
            return body[:body.index(b'\n')]


def outcome_of(line, path):
    """What the agent's answer to CniExec means to the runtime: (exit code, output)."""
    code = line.get('code') if isinstance(line, dict) else None
    if code == STATUS['ok']:
        reply = line.get('reply')
        reply = reply if isinstance(reply, dict) else {}
        exit_code, output = reply.get('exitCode'), reply.get('output')
        if isinstance(exit_code, int) and not isinstance(exit_code, bool) and isinstance(output, str):
            return exit_code, output
        raise CniError(CNI_CODE['agentFailed'], "the weft agent's reply to CniExec has no exitCode and output")
    message = line.get('message') if isinstance(line, dict) else None
    message = message if isinstance(message, str) else f'CniExec failed with status {code}'
    if code == STATUS['unimplemented']:
        raise CniError(CNI_CODE['agentFailed'], f'the weft agent at {path} does not run CNI commands (no CniExec): it is older than this plugin; restart it from the same install', message)
    if code in (STATUS['invalidArgument'], STATUS['resourceExhausted']):
        raise CniError(CNI_CODE['invalidConfig'], message)
    raise CniError(CNI_CODE['agentFailed'], message)


def run_plugin(env, read_stdin):
    """Runs one CNI command through the agent: (exit code, what to print; nothing when empty)."""
    version = '1.0.0'
    try:
        command = command_of(env)
        if command == 'VERSION':
            return 0, json.dumps({'cniVersion': '1.0.0', 'supportedVersions': SUPPORTED_VERSIONS})
        try:
            text = read_stdin()
        except OSError as error:
            raise CniError(CNI_CODE['io'], 'cannot read the network configuration from stdin', error.strerror or str(error)) from None
        config = decode(text)
        path = socket_of(config)
        # Errors answered here carry the configuration's version, as the agent's do once it has read it.
        if config.get('cniVersion') in SUPPORTED_VERSIONS:
            version = config['cniVersion']
        forwarded = forwarded_env(env)
        try:
            return outcome_of(call_agent(path, 'CniExec', {'env': forwarded, 'config': text}), path)
        except (Unreachable, CniError) as error:
            failure = error if isinstance(error, CniError) else CniError(
                CNI_CODE['tryLater'], f'cannot reach the weft agent at {path}',
                'start it with `weft agent` (as root), or set "socket" in the network configuration')
            if command != 'STATUS':
                raise failure from None
            # STATUS: whatever keeps the agent from answering means ADD cannot work now.
            raise CniError(CNI_CODE['notAvailable'], f'weft cannot attach containers to network {config.get("network")} now: {failure.msg}', failure.details) from None
    except CniError as error:
        return 1, json.dumps(error.as_json(version))
    except Exception as error:  # noqa: BLE001 - a runtime must get CNI error JSON, whatever failed
        return 1, json.dumps(CniError(CNI_CODE['io'], 'the weft CNI plugin failed', f'{type(error).__name__}: {error}').as_json(version))


def read_stdin():
    return sys.stdin.buffer.read().decode('utf-8', 'replace')


def main():
    exit_code, output = run_plugin(dict(os.environ), read_stdin)
    if output:
        # Bytes, whatever the locale the runtime gave: the agent's output is UTF-8 JSON.
        sys.stdout.buffer.write((output + '\n').encode('utf-8', 'replace'))
        sys.stdout.buffer.flush()
    sys.exit(exit_code)


if __name__ == '__main__':
    main()
