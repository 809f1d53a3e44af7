# The one nftables change on the hot path, written as netlink messages
# directly: replace a service chain's rule with `dnat to <ip>` or
# `dnat to numgen random mod N map { 0 : ip0, ... }`.
#
# Why: libnftables refreshes its rule cache with ~7 netlink dumps before every
# command, ~0.19 ms per namespace; a backend change on a host with 1000
# sandboxes then takes ~190 ms. This batch (flush the chain, create the
# anonymous map, fill it, add the rule) is one sendmsg and needs no cache.
# The messages are what nft 1.0 itself sends for that rule (nft --debug=mnl),
# so `nft list` shows the same text as if nft had written it.
# Anything else (new services, VIPs, the reject rule) still goes through nft.
import errno
import functools
import os
import socket
import struct

NETLINK_NETFILTER = 12
NFNL_SUBSYS_NFTABLES = 10
NFNL_MSG_BATCH_BEGIN = 16
NFNL_MSG_BATCH_END = 17
NFT_MSG_NEWRULE = 6
NFT_MSG_DELRULE = 8
NFT_MSG_NEWSET = 9
NFT_MSG_NEWSETELEM = 12
NLM_F_REQUEST = 0x1
NLM_F_ACK = 0x4
NLM_F_CREATE = 0x400
NLM_F_APPEND = 0x800
NLMSG_ERROR = 2
SO_SNDBUFFORCE = 32
SO_RCVBUFFORCE = 33
SOCKET_BUFFER = 16 << 20
NLA_F_NESTED = 0x8000
NFPROTO_IPV4 = 2

NFT_REG_1 = 1
NFT_SET_ANONYMOUS, NFT_SET_CONSTANT, NFT_SET_MAP = 0x1, 0x2, 0x8
TYPE_INTEGER, TYPE_IPADDR = 4, 7
NFT_NG_RANDOM = 1
NFT_NAT_DNAT = 1
ANON_MAP = b'__map%d\0'
# Set userdata as nft writes it: key in host byte order, data big endian, no interval merge.
MAP_USERDATA = bytes.fromhex('000401000000' '010402000000' '060400000000')


def attr(kind, payload):
    header = struct.pack('HH', 4 + len(payload), kind)
    return header + payload + b'\0' * (-len(payload) % 4)


def nest(kind, *children):
    return attr(kind | NLA_F_NESTED, b''.join(children))


def string(kind, value):
    return attr(kind, value.encode() + b'\0')


def be32(kind, value):
    return attr(kind, struct.pack('>I', value))


def message(kind, flags, seq, family, body, res_id=0):
    header_len = 16 + 4
    return struct.pack('=IHHII', header_len + len(body), kind, flags, seq, 0) + struct.pack('BBH', family, 0, socket.htons(res_id)) + body


def nft_message(msg, flags, seq, body):
    return message((NFNL_SUBSYS_NFTABLES << 8) | msg, NLM_F_REQUEST | flags, seq, NFPROTO_IPV4, body)


def expression(name, *data):
    return nest(1, string(1, name), nest(2, *data))


def ipv4(address):
    return socket.inet_pton(socket.AF_INET, address)


def data_value(kind, value):
    return nest(kind, attr(1, value))


def chain_batch(table, chain, backends, seq):
    """The messages replacing `chain`'s rules with the dnat rule for `backends` (at least one)."""
    messages = [nft_message(NFT_MSG_DELRULE, 0, seq, string(1, table) + string(2, chain))]
    if len(backends) == 1:
        exprs = [
            expression('immediate', be32(1, NFT_REG_1), data_value(2, ipv4(backends[0]))),
        ]
    else:
        n = len(backends)
        # Each new map in a batch needs its own ID: kernels before ~6.12 look IDs up oldest
        # first, so a repeated ID sends the elements of a second map into the first (EBUSY).
        set_id = seq + 1
        messages.append(nft_message(NFT_MSG_NEWSET, NLM_F_CREATE, seq + 1, b''.join([
            string(1, table), attr(2, ANON_MAP), be32(3, NFT_SET_ANONYMOUS | NFT_SET_CONSTANT | NFT_SET_MAP),
            be32(4, TYPE_INTEGER), be32(5, 4), be32(6, TYPE_IPADDR), be32(7, 4), be32(10, set_id),
            nest(9, be32(1, n)), attr(13, MAP_USERDATA),
        ])))
        elements = [nest(1, data_value(1, struct.pack('=I', i)), data_value(2, ipv4(ip))) for i, ip in enumerate(backends)]
        messages.append(nft_message(NFT_MSG_NEWSETELEM, NLM_F_CREATE, seq + 2, string(1, table) + attr(2, ANON_MAP) + be32(4, set_id) + nest(3, *elements)))
        exprs = [
            expression('numgen', be32(1, NFT_REG_1), be32(2, n), be32(3, NFT_NG_RANDOM), be32(4, 0)),
            expression('lookup', be32(2, NFT_REG_1), be32(3, NFT_REG_1), attr(1, ANON_MAP), be32(4, set_id)),
        ]
    exprs.append(expression('nat', be32(1, NFT_NAT_DNAT), be32(2, NFPROTO_IPV4), be32(3, NFT_REG_1)))
    messages.append(nft_message(NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND, seq + len(messages), string(1, table) + string(2, chain) + nest(4, *exprs)))
    return messages


def open_socket():
    """A netfilter netlink socket, bound to the calling thread's current network namespace."""
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
    # A change of every service at once (a host with backends of them all died) is one
    # batch of ~0.5 KB per service: larger than the default socket buffer (EMSGSIZE).
    sock.setsockopt(socket.SOL_SOCKET, SO_SNDBUFFORCE, SOCKET_BUFFER)
    sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, SOCKET_BUFFER)
    sock.bind((0, 0))
    return sock


@functools.lru_cache(maxsize=16)  # reuse happens within one request; batches can be ~0.5 MB
def transaction(table, changes):
    """The batch for `changes` ((chain, backends) tuples) and how many acks to expect.
    Cached: every sandbox on the same networks gets the same change. Only the last
    message asks for an ack (the kernel answers once the whole batch is done); any
    failing message reports its error anyway, so acks stay one per batch, not four
    per chain that could overflow the receive buffer."""
    seq = 1
    body = []
    for chain, backends in changes:
        batch = chain_batch(table, chain, backends, seq)
        seq += len(batch)
        body.extend(batch)
    begin = message(NFNL_MSG_BATCH_BEGIN, NLM_F_REQUEST, 0, 0, b'', NFNL_SUBSYS_NFTABLES)
    end = message(NFNL_MSG_BATCH_END, NLM_F_REQUEST, seq, 0, b'', NFNL_SUBSYS_NFTABLES)
    last = bytearray(body[-1])
    struct.pack_into('=H', last, 6, struct.unpack_from('=H', last, 6)[0] | NLM_F_ACK)
    body[-1] = bytes(last)
    return b''.join([begin, *body, end]), 1


def socket_from_fd(fd, family, kind, proto):
    return socket.socket(family, kind, proto, fileno=fd)


def send_transaction(sock, transaction_):
    """Sends a batch from transaction(); raises OSError with the kernel's errno if it was refused."""
    batch, expected = transaction_
    sock.send(batch)
    # The kernel runs the whole batch inside send(): every reply is queued by now.
    errors = []
    acked = drain(sock, errors)
    if errors:
        raise OSError(errors[0], os.strerror(errors[0]))
    if acked != expected:
        raise OSError(errno.EPROTO, f'{acked} of {expected} nftables acknowledgements')


def drain(sock, errors):
    """Reads every queued reply, also after an error; returns the acks, appends errnos to `errors`."""
    acked = 0
    while True:
        try:
            data = sock.recv(65536, socket.MSG_DONTWAIT)
        except BlockingIOError:
            return acked
        except OSError as error:  # ENOBUFS: replies were lost; what is left is read next time
            errors.append(error.errno)
            return acked
        acked += read_replies(data, errors)


def read_replies(data, errors):
    """Counts the acknowledgements in `data`; appends the errno of each error to `errors`."""
    acked = 0
    offset = 0
    while offset + 20 <= len(data):
        length, kind = struct.unpack_from('=IH', data, offset)
        if length < 16:
            break
        if kind == NLMSG_ERROR:
            (code,) = struct.unpack_from('=i', data, offset + 16)
            if code == 0:
                acked += 1
            else:
                errors.append(-code)
        offset += (length + 3) & ~3
    return acked
