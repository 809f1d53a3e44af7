#!/usr/bin/python3
# Applies nftables changes inside many network namespaces from one process.
#
# Why: one `nft` process costs ~37 ms, and every sandbox is its own namespace,
# so a backend change on a host with 1000 sandboxes would take ~40 s that way.
# A netlink socket stays bound to the namespace it was opened in: this worker
# enters a namespace (setns) only to open sockets there, and afterwards talks
# to the namespace through them without switching again.
#
# Two ways in:
# - a script (any nft text) through libnftables, for whole tables: contexts
#   are kept for the most recently used namespaces only, because libnftables
#   waits on its socket with select(), which aborts the process on a file
#   descriptor above 1023;
# - a backend change of service chains (the hot path) as raw netlink
#   (nft_netlink.py), through one socket per namespace kept above fd 1023.
#
# Protocol (JSON lines): request {"id": N, "items": [ITEM, ...]} where ITEM is
#   {"netns": PATH, "script": TEXT}
#   {"netns": PATH, "table": NAME, "chains": [[CHAIN, [IP, ...]], ...]}
#   either of the two above, or neither, with "flows": [[VIP, "tcp"|"udp", BACKEND], ...]:
#     after the change, the conntrack entries of those flows go (conntrack_netlink.py)
#   {"netns": PATH, "forget": true}
#   {"netns": PATH, "list": TABLE}      (for weft doctor: the table as nft JSON)
# reply {"id": N, "results": [{"ok": true[, "output": JSON or null when there is no such table]}
#   | {"ok": false, "error": TEXT}]}, in request order.
# Nothing here decides anything; the agent's data plane sends what to apply.
import collections
import fcntl
import re
import os
import resource
import sys

import nftables

sys.path.insert(1, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))

import conntrack_netlink  # noqa: E402 - after the path to the shared module
import nft_netlink  # noqa: E402
from json_line_worker import inside, serve  # noqa: E402

MAX_CONTEXTS = 256
HIGH_FD = 1024
TABLE_NAME = re.compile(r'^[A-Za-z_][A-Za-z0-9_]{0,31}$')
contexts = collections.OrderedDict()  # netns path -> (nsfs inode, Nftables context), least recent first
sockets = {}  # netns path -> (nsfs inode, netlink socket)


def raise_fd_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard == resource.RLIM_INFINITY else min(hard, 1 << 20)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def cached(cache, path, inode):
    entry = cache.get(path)
    # A namespace deleted and re-created under the same name is a new namespace.
    return entry[1] if entry is not None and entry[0] == inode else None


def context_for(path, inode):
    ctx = cached(contexts, path, inode)
    if ctx is not None:
        contexts.move_to_end(path)
        return ctx
    ctx = inside(path, nftables.Nftables)
    contexts[path] = (inode, ctx)
    while len(contexts) > MAX_CONTEXTS:
        contexts.popitem(last=False)  # its socket closes with the context
    return ctx


def socket_for(path, inode):
    sock = cached(sockets, path, inode)
    if sock is not None:
        return sock
    sock = inside(path, nft_netlink.open_socket)
    # Above the range select() can handle, so libnftables' own sockets stay below it.
    high = fcntl.fcntl(sock.fileno(), fcntl.F_DUPFD_CLOEXEC, HIGH_FD)
    family, kind, proto = sock.family, sock.type, sock.proto
    sock.close()
    sock = nft_netlink.socket_from_fd(high, family, kind, proto)
    sockets[path] = (inode, sock)
    return sock


def forget(path):
    contexts.pop(path, None)
    entry = sockets.pop(path, None)
    if entry is not None:
        entry[1].close()


def apply(item):
    path = item.get('netns')
    if not isinstance(path, str) or not path.startswith('/'):
        return {'ok': False, 'error': 'netns must be an absolute path'}
    if item.get('forget'):
        forget(path)
        return {'ok': True}
    try:
        inode = os.stat(path).st_ino
        if 'list' in item:
            return list_table(path, inode, item.get('list'))
        flows = None
        if 'flows' in item:
            try:
                flows = conntrack_netlink.parse_flows(item['flows'])
            except (TypeError, ValueError, OSError):
                return {'ok': False, 'error': 'flows must be [[vip, "tcp"|"udp", backend], ...] with IPv4 addresses'}
        if 'chains' in item:
            result = apply_chains(path, inode, item)
        elif 'script' in item or flows is None:
            result = apply_script(path, inode, item.get('script'))
        else:
            result = {'ok': True}
        if result['ok'] and flows:
            result = drop_flows(path, inode, flows)
        return result
    except OSError as error:
        forget(path)
        return {'ok': False, 'error': f'{path}: {error.strerror or error}'}


def apply_script(path, inode, script):
    if not isinstance(script, str):
        return {'ok': False, 'error': 'script must be a string'}
    rc, _out, err = context_for(path, inode).cmd(script)
    if rc != 0:
        return {'ok': False, 'error': err.strip() or f'nft returned {rc}'}
    return {'ok': True}


def list_table(path, inode, table):
    if not isinstance(table, str) or not TABLE_NAME.match(table):
        return {'ok': False, 'error': 'list must be a table name'}
    ctx = context_for(path, inode)
    ctx.set_json_output(True)
    try:
        rc, out, err = ctx.cmd(f'list table ip {table}')
    finally:
        ctx.set_json_output(False)
    if rc != 0:
        if 'No such file or directory' in err:
            return {'ok': True, 'output': None}
        return {'ok': False, 'error': err.strip() or f'nft returned {rc}'}
    return {'ok': True, 'output': out}


def apply_chains(path, inode, item):
    table, chains = item.get('table'), item.get('chains')
    try:
        changes = tuple((str(chain), tuple(str(ip) for ip in ips)) for chain, ips in chains)
        if not isinstance(table, str) or not changes or any(not ips for _, ips in changes):
            raise ValueError
        batch = nft_netlink.transaction(table, changes)
    except (TypeError, ValueError, OSError):
        return {'ok': False, 'error': 'chains must be [[chain, [ipv4, ...]], ...], each with at least one address'}
    sock = socket_for(path, inode)
    try:
        nft_netlink.send_transaction(sock, batch)
    except OSError as error:
        return {'ok': False, 'error': f'nftables refused the change: {error.strerror or error}'}
    return {'ok': True}


def drop_flows(path, inode, flows):
    try:
        conntrack_netlink.delete_flows(socket_for(path, inode), flows)
    except OSError as error:
        return {'ok': False, 'error': f'conntrack refused to delete flows: {error.strerror or error}'}
    return {'ok': True}


def main():
    raise_fd_limit()
    serve(apply)


if __name__ == '__main__':
    main()
