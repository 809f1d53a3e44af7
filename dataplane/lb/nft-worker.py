#!/usr/bin/python3
# Applies nftables scripts inside many network namespaces from one process.
#
# Why: one `nft` process costs ~37 ms, and every sandbox is its own namespace,
# so a backend change on a host with 1000 sandboxes would take ~40 s that way.
# libnftables opens its netlink socket when a context is created, and a socket
# stays bound to the namespace it was opened in: this worker enters each
# namespace once (setns), creates a context there, and afterwards talks to that
# namespace through the cached context without switching again.
#
# Protocol (JSON lines): request {"id": N, "items": [{"netns": PATH, "script": TEXT} | {"netns": PATH, "forget": true}]}
# reply {"id": N, "results": [{"ok": true} | {"ok": false, "error": TEXT}]}, in request order.
# Nothing here decides anything; the agent's data plane sends what to apply.
import ctypes
import json
import os
import sys

import nftables

CLONE_NEWNET = 0x40000000
libc = ctypes.CDLL(None, use_errno=True)
HOME = os.open('/proc/self/ns/net', os.O_RDONLY)
contexts = {}  # netns path -> (nsfs inode, Nftables context)


def enter(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))
    finally:
        os.close(fd)


def context_for(path):
    inode = os.stat(path).st_ino
    cached = contexts.get(path)
    # A namespace deleted and re-created under the same name is a new namespace.
    if cached is not None and cached[0] == inode:
        return cached[1]
    enter(path)
    try:
        ctx = nftables.Nftables()
    finally:
        if libc.setns(HOME, CLONE_NEWNET) != 0:
            sys.exit('cannot return to the home network namespace')
    contexts[path] = (inode, ctx)
    return ctx


def apply(item):
    path = item.get('netns')
    if not isinstance(path, str) or not path.startswith('/'):
        return {'ok': False, 'error': 'netns must be an absolute path'}
    if item.get('forget'):
        contexts.pop(path, None)
        return {'ok': True}
    script = item.get('script')
    if not isinstance(script, str):
        return {'ok': False, 'error': 'script must be a string'}
    try:
        ctx = context_for(path)
    except OSError as error:
        contexts.pop(path, None)
        return {'ok': False, 'error': f'cannot enter {path}: {error.strerror or error}'}
    rc, _out, err = ctx.cmd(script)
    if rc != 0:
        return {'ok': False, 'error': err.strip() or f'nft returned {rc}'}
    return {'ok': True}


def main():
    for line in sys.stdin:
        try:
            request = json.loads(line)
            results = [apply(item) for item in request['items']]
            reply = {'id': request['id'], 'results': results}
        except (ValueError, KeyError, TypeError) as error:
            reply = {'id': None, 'error': f'bad request: {error}'}
        sys.stdout.write(json.dumps(reply) + '\n')
        sys.stdout.flush()


if __name__ == '__main__':
    main()
