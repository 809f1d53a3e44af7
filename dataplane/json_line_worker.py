# What the agent's python workers (lb/nft-worker.py, link-worker/link-worker.py)
# share: the JSON-lines request loop (dataplane/python-worker.ts is the other
# end) and entering a network namespace without staying there.
#
# Request {"id": N, "items": [ITEM, ...]}; reply {"id": N, "results": [RESULT, ...]}
# in item order, or {"id": N, "error": TEXT} for a request that is not one.
import ctypes
import json
import os
import sys

CLONE_NEWNET = 0x40000000
libc = ctypes.CDLL(None, use_errno=True)
HOME = os.open('/proc/self/ns/net', os.O_RDONLY | os.O_CLOEXEC)


def setns(fd):
    if libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def inside(path, make):
    """make() run inside the namespace at `path`; the worker always returns home."""
    # Non-blocking: a path swapped for a FIFO would otherwise stall the worker in open().
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        setns(fd)
    finally:
        os.close(fd)
    try:
        return make()
    finally:
        if libc.setns(HOME, CLONE_NEWNET) != 0:
            sys.exit('cannot return to the home network namespace')


def serve(handle):
    """Answers requests from stdin until it closes; handle(item) gives one item's result and never raises."""
    for line in sys.stdin:
        try:
            request = json.loads(line)
        except ValueError as error:
            request = {'error': str(error)}
        request_id = request.get('id') if isinstance(request, dict) else None
        items = request.get('items') if isinstance(request, dict) else None
        if isinstance(items, list):
            reply = {'id': request_id, 'results': [safely(handle, item) for item in items]}
        else:
            reply = {'id': request_id, 'error': 'bad request: items must be a list'}
        sys.stdout.write(json.dumps(reply) + '\n')
        sys.stdout.flush()


def safely(handle, item):
    """One item's result, whatever goes wrong with it: a reply must come for every request."""
    try:
        if not isinstance(item, dict):
            return {'ok': False, 'error': 'an item must be an object'}
        return handle(item)
    except Exception as error:  # noqa: BLE001 - any failure is that item's, never the worker's
        return {'ok': False, 'error': f'{type(error).__name__}: {error}'}
