# Deleting the conntrack entries of flows that a removed backend held, as
# ctnetlink messages on the worker's netfilter socket (the same socket type the
# nftables batches use: nfnetlink carries both subsystems).
#
# Why: conntrack keeps a flow's NAT mapping as long as packets keep coming, so
# a client that always sends from one UDP port stays on a dead backend forever
# unless its entry goes (kube-proxy deletes these entries too). A `conntrack`
# process per namespace would cost milliseconds each; one message on a socket
# the worker already holds costs microseconds, and nothing at all happens in
# the kernel for a namespace that tracks no connection.
#
# A flow is selected by what the load balancer knows: original destination the
# VIP, layer-4 protocol, and reply source the backend (after DNAT the reply
# comes from the backend). Two ways to delete:
# - one filtered flush per (VIP, protocol, backend): the kernel walks its table
#   once and deletes what matches (CTA_FILTER on a delete, Linux 6.14 and later);
# - on older kernels, which refuse that (EINVAL or EOPNOTSUPP), a dump of the
#   namespace's entries (filtered in the kernel where it can, since 5.8, and
#   here again in any case) and a delete of each matching entry by its tuple.
import errno
import os
import socket
import struct

from nft_netlink import attr, message, nest, drain

NFNL_SUBSYS_CTNETLINK = 1
IPCTNL_MSG_CT_NEW = 0
IPCTNL_MSG_CT_GET = 1
IPCTNL_MSG_CT_DELETE = 2
NLM_F_REQUEST = 0x1
NLM_F_ACK = 0x4
NLM_F_DUMP = 0x300
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLA_F_NESTED = 0x8000
NLA_TYPE_MASK = 0x3FFF
AF_INET = 2

CTA_TUPLE_ORIG, CTA_TUPLE_REPLY, CTA_FILTER = 1, 2, 25
CTA_TUPLE_IP, CTA_TUPLE_PROTO = 1, 2
CTA_IP_V4_SRC, CTA_IP_V4_DST = 1, 2
CTA_PROTO_NUM, CTA_PROTO_SRC_PORT, CTA_PROTO_DST_PORT = 1, 2, 3
CTA_FILTER_ORIG_FLAGS, CTA_FILTER_REPLY_FLAGS = 1, 2
FILTER_IP_SRC, FILTER_IP_DST, FILTER_PROTO_NUM = 1 << 0, 1 << 1, 1 << 3
PROTOCOLS = {'tcp': 6, 'udp': 17}

# Whether this kernel takes a filter on a delete; learnt from the first answer.
_filtered_flush = os.environ.get('WEFT_LB_CONNTRACK') != 'dump'


def _ct_message(kind, flags, seq, body):
    return message((NFNL_SUBSYS_CTNETLINK << 8) | kind, NLM_F_REQUEST | flags, seq, AF_INET, body)


def _u8(kind, value):
    return attr(kind, struct.pack('B', value))


def _u32(kind, value):
    return attr(kind, struct.pack('=I', value))


def _be16(kind, value):
    return attr(kind, struct.pack('>H', value))


def _ipv4(kind, address):
    return attr(kind, socket.inet_pton(socket.AF_INET, address))


def _filter_body(vip, protocol, backend):
    """Original destination `vip`, protocol, reply source `backend`: the tuples carry the values, the filter says which count."""
    orig = nest(CTA_TUPLE_ORIG, nest(CTA_TUPLE_IP, _ipv4(CTA_IP_V4_DST, vip)), nest(CTA_TUPLE_PROTO, _u8(CTA_PROTO_NUM, protocol)))
    reply = nest(CTA_TUPLE_REPLY, nest(CTA_TUPLE_IP, _ipv4(CTA_IP_V4_SRC, backend)), nest(CTA_TUPLE_PROTO, _u8(CTA_PROTO_NUM, protocol)))
    flags = nest(CTA_FILTER, _u32(CTA_FILTER_ORIG_FLAGS, FILTER_IP_DST | FILTER_PROTO_NUM), _u32(CTA_FILTER_REPLY_FLAGS, FILTER_IP_SRC))
    return orig + reply + flags


def parse_flows(flows):
    """[[vip, 'tcp'|'udp', backend], ...] -> tuples; ValueError on anything else (input from outside the worker)."""
    parsed = []
    for vip, protocol, backend in flows:
        if protocol not in PROTOCOLS:
            raise ValueError(protocol)
        socket.inet_pton(socket.AF_INET, vip)
        socket.inet_pton(socket.AF_INET, backend)
        parsed.append((vip, PROTOCOLS[protocol], backend))
    return parsed


def delete_flows(sock, flows):
    """Deletes every entry of `flows` ((vip, protocol number, backend) tuples) in the socket's namespace."""
    global _filtered_flush
    if not flows:
        return
    if _filtered_flush:
        error = _flush_filtered(sock, flows)
        if error is None:
            return
        if error not in (errno.EINVAL, errno.EOPNOTSUPP):
            raise OSError(error, os.strerror(error))
        # Kernels before 6.14 read the tuples of a delete as one exact entry (EINVAL: incomplete)
        # or refuse a filter there (EOPNOTSUPP): nothing was deleted; dump and delete one by one.
        _filtered_flush = False
    _dump_and_delete(sock, flows)


def _flush_filtered(sock, flows):
    """All flushes in one send; the last asks for an ack. Returns the first errno, or None."""
    batch = [_ct_message(IPCTNL_MSG_CT_DELETE, 0, seq, _filter_body(*flow)) for seq, flow in enumerate(flows, start=1)]
    last = bytearray(batch[-1])
    struct.pack_into('=H', last, 6, struct.unpack_from('=H', last, 6)[0] | NLM_F_ACK)
    batch[-1] = bytes(last)
    sock.send(b''.join(batch))
    errors = []
    acked = drain(sock, errors)
    if errors:
        return errors[0]
    if acked != 1:
        return errno.EPROTO
    return None


def _dump_and_delete(sock, flows):
    wanted = {}
    for vip, protocol, backend in flows:
        wanted.setdefault((vip, protocol), set()).add(backend)
    doomed = []
    for vip, protocol in wanted:
        # One dump per (VIP, protocol); the kernel filters on the original tuple where it can.
        body = nest(CTA_TUPLE_ORIG, nest(CTA_TUPLE_IP, _ipv4(CTA_IP_V4_DST, vip)), nest(CTA_TUPLE_PROTO, _u8(CTA_PROTO_NUM, protocol)))
        body += nest(CTA_FILTER, _u32(CTA_FILTER_ORIG_FLAGS, FILTER_IP_DST | FILTER_PROTO_NUM), _u32(CTA_FILTER_REPLY_FLAGS, 0))
        for orig, reply_src in _dump(sock, body):
            if orig[1] == vip and orig[2] == protocol and reply_src in wanted[(vip, protocol)]:
                doomed.append(orig)
    for seq, (src, dst, protocol, sport, dport) in enumerate(doomed, start=1):
        tuple_ = nest(CTA_TUPLE_ORIG,
                      nest(CTA_TUPLE_IP, _ipv4(CTA_IP_V4_SRC, src), _ipv4(CTA_IP_V4_DST, dst)),
                      nest(CTA_TUPLE_PROTO, _u8(CTA_PROTO_NUM, protocol), _be16(CTA_PROTO_SRC_PORT, sport), _be16(CTA_PROTO_DST_PORT, dport)))
        sock.send(_ct_message(IPCTNL_MSG_CT_DELETE, NLM_F_ACK, seq, tuple_))
        errors = []
        drain(sock, errors)
        # ENOENT: the entry timed out meanwhile, which is what we wanted.
        if errors and errors[0] != errno.ENOENT:
            raise OSError(errors[0], os.strerror(errors[0]))


def _dump(sock, body):
    """(original tuple, reply source) of each entry a dump returns."""
    sock.send(_ct_message(IPCTNL_MSG_CT_GET, NLM_F_DUMP, 1, body))
    entries = []
    while True:
        data = sock.recv(1 << 20)
        offset = 0
        while offset + 16 <= len(data):
            length, kind = struct.unpack_from('=IH', data, offset)
            if length < 16:
                return entries
            if kind == NLMSG_DONE:
                return entries
            if kind == NLMSG_ERROR:
                (code,) = struct.unpack_from('=i', data, offset + 16)
                if code != 0:
                    raise OSError(-code, os.strerror(-code))
            elif kind & 0xFF == IPCTNL_MSG_CT_NEW and kind >> 8 == NFNL_SUBSYS_CTNETLINK:
                entry = _entry(data[offset + 20:offset + length])
                if entry is not None:
                    entries.append(entry)
            offset += (length + 3) & ~3


def _attributes(data):
    attrs = {}
    offset = 0
    while offset + 4 <= len(data):
        length, kind = struct.unpack_from('=HH', data, offset)
        if length < 4:
            break
        attrs[kind & NLA_TYPE_MASK] = data[offset + 4:offset + length]
        offset += (length + 3) & ~3
    return attrs


def _tuple(data):
    attrs = _attributes(data)
    ip = _attributes(attrs.get(CTA_TUPLE_IP, b''))
    proto = _attributes(attrs.get(CTA_TUPLE_PROTO, b''))
    if len(ip.get(CTA_IP_V4_SRC, b'')) != 4 or len(ip.get(CTA_IP_V4_DST, b'')) != 4 or len(proto.get(CTA_PROTO_NUM, b'')) != 1:
        return None
    sport = proto.get(CTA_PROTO_SRC_PORT, b'\0\0')
    dport = proto.get(CTA_PROTO_DST_PORT, b'\0\0')
    return (socket.inet_ntop(socket.AF_INET, ip[CTA_IP_V4_SRC]), socket.inet_ntop(socket.AF_INET, ip[CTA_IP_V4_DST]),
            proto[CTA_PROTO_NUM][0], struct.unpack('>H', sport[:2])[0], struct.unpack('>H', dport[:2])[0])


def _entry(data):
    attrs = _attributes(data)
    orig = _tuple(attrs.get(CTA_TUPLE_ORIG, b''))
    reply = _tuple(attrs.get(CTA_TUPLE_REPLY, b''))
    if orig is None or reply is None:
        return None
    return orig, reply[0]
