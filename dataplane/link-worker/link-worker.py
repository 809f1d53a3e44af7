#!/usr/bin/python3
# Runs the data plane's `ip` batches of a container start and stop as
# netlink requests from one long-lived process, in any network namespace.
#
# Why: each `ip` process costs 15-30 ms here, and the agent waits 10-20 ms
# more between one exiting and the next starting; a container's ADD ran five
# of them one after the other. The kernel's own work for the same lines is
# ~2-4 ms. This worker enters a namespace (setns) only to open a netlink
# socket there, and closes that socket when the batch is done: a socket
# holds its namespace alive, and a container's namespace must go when its
# runtime deletes it.
#
# Protocol (JSON lines, as nft-worker.py): request {"id": N, "items": [ITEM, ...]} where ITEM is
#   {"netns": PATH or null (the worker's own), "tool": "ip" | "bridge", "lines": [TEXT, ...], "force": BOOL}
# reply {"id": N, "results": [RESULT, ...]} in request order, RESULT one of
#   {"ok": true, "unsupported": true}   a line is not one ip_lines.py knows: nothing ran
#   {"ok": true}                          every line ran
#   {"ok": false, "failures": [[LINE, MESSAGE], ...]}  1-based lines that failed; without
#                                         "force" the first failure is the last line that ran
#   {"ok": false, "error": TEXT}          the namespace could not be entered: nothing ran
import os
import sys

sys.path.insert(1, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))

import ip_lines  # noqa: E402 - after the path to the shared module
import rtnetlink  # noqa: E402
from json_line_worker import inside, serve  # noqa: E402

home_link = None


def open_in(path):
    """A route netlink socket inside the namespace at `path`."""
    return inside(path, rtnetlink.open_socket)


def netns_target(value):
    """`netns X` of a veth end, as ip reads it: a path, else a name under /run/netns, else a process ID."""
    path = value if value.startswith('/') else f'/run/netns/{value}'
    try:
        return {'netns_fd': os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)}
    except OSError as error:
        if value.isdigit() and int(value) < 1 << 22:  # PID_MAX_LIMIT
            return {'netns_pid': int(value)}
        raise rtnetlink.NetlinkError(error.errno, f'Cannot open network namespace "{value}": {error.strerror}') from None


def add_veth(link, name, peer, options, peer_options):
    own, other = dict(options), dict(peer_options)
    opened = []
    try:
        for side in (own, other):
            if 'netns' in side:
                target = netns_target(side.pop('netns'))
                opened.extend(target.values() if 'netns_fd' in target else [])
                side.update(target)
        link.add_veth(name, peer, own, other)
    finally:
        for fd in opened:
            os.close(fd)


def perform(link, op):
    kind, args = op
    if kind == 'add_veth':
        add_veth(link, **args)
    else:
        getattr(link, kind)(**args)


def run_batch(item):
    lines = item.get('lines')
    if not isinstance(lines, list) or not all(isinstance(line, str) for line in lines):
        return {'ok': False, 'error': 'lines must be a list of strings'}
    tool = item.get('tool', 'ip')
    if tool not in ('ip', 'bridge'):
        return {'ok': False, 'error': 'tool must be ip or bridge'}
    ops = [ip_lines.parse(line, tool) for line in lines]
    if any(op is None for op in ops):
        return {'ok': True, 'unsupported': True}
    path = item.get('netns')
    if path is not None and (not isinstance(path, str) or not path.startswith('/')):
        return {'ok': False, 'error': 'netns must be an absolute path or null'}
    global home_link
    try:
        if path is None:
            home_link = home_link or rtnetlink.Link(rtnetlink.open_socket())
            link = home_link
        else:
            link = rtnetlink.Link(open_in(path))
    except OSError as error:
        return {'ok': False, 'error': f'Cannot open network namespace "{path}": {error.strerror or error}'}
    try:
        return run_ops(link, ops, bool(item.get('force')))
    finally:
        if link is not home_link:
            link.sock.close()


def run_ops(link, ops, force):
    failures = []
    for number, op in enumerate(ops, start=1):
        try:
            perform(link, op)
        except rtnetlink.NetlinkError as error:
            failures.append([number, error.describe()])
        except OSError as error:
            failures.append([number, f'{error.strerror or error}'])
        except Exception as error:  # noqa: BLE001 - earlier lines ran: this one failed, not the batch
            failures.append([number, f'{type(error).__name__}: {error}'])
        if failures and not force:
            break
    return {'ok': not failures, 'failures': failures} if failures else {'ok': True}


if __name__ == '__main__':
    serve(run_batch)
