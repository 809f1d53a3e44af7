# The rtnetlink requests behind the `ip` lines a container start runs (see
# ip_lines.py for which): make a veth pair, set a link's state, add an
# address, replace or delete a route.
#
# Why by hand: the well-kept library (pyroute2, Debian's python3-pyroute2)
# costs ~0.4 s to import and ~26 MB per process, more than everything else in
# this worker; the requests below are a few fixed message shapes. The field
# layouts are the kernel's uapi headers (linux/rtnetlink.h, if_link.h,
# if_addr.h, veth.h); the attributes are the ones iproute2 sends for the same
# command, so the kernel ends in the same state as after `ip`.
#
# Every request names interfaces, never caches their indexes: a veth is
# deleted and made again under the same name all the time (a container's
# namespace going away takes its peer with it), and a stale index would hit
# the wrong link or none. That is also why this is not a long-lived
# `ip -batch` process: iproute2 keeps a name -> index cache for its lifetime.
import errno
import os
import socket
import struct

NETLINK_ROUTE = 0
SOL_NETLINK = 270
NETLINK_CAP_ACK = 10
NETLINK_EXT_ACK = 11

NLMSG_ERROR = 2
NLM_F_REQUEST = 0x1
NLM_F_ACK = 0x4
NLM_F_REPLACE = 0x100
NLM_F_EXCL = 0x200
NLM_F_CREATE = 0x400
NLM_F_ACK_TLVS = 0x200  # in an error message's own header: extended ACK attributes follow
NLMSGERR_ATTR_MSG = 1

RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK = 16, 17, 18
RTM_NEWADDR, RTM_DELADDR = 20, 21
RTM_NEWROUTE, RTM_DELROUTE = 24, 25
RTM_NEWNEIGH, RTM_DELNEIGH = 28, 29

IFF_UP = 0x1
IFLA_ADDRESS, IFLA_IFNAME, IFLA_MTU, IFLA_MASTER = 1, 3, 4, 10
IFLA_LINKINFO, IFLA_NET_NS_PID, IFLA_IFALIAS = 18, 19, 20
IFLA_GROUP, IFLA_NET_NS_FD, IFLA_EXT_MASK = 27, 28, 29
IFLA_INFO_KIND, IFLA_INFO_DATA, IFLA_INFO_SLAVE_KIND, IFLA_INFO_SLAVE_DATA = 1, 2, 4, 5
VETH_INFO_PEER = 1
IFLA_BRPORT_ISOLATED = 33
RTEXT_FILTER_SKIP_STATS = 1 << 3
NLA_F_NESTED = 0x8000

IFA_ADDRESS, IFA_LOCAL = 1, 2
RTA_DST, RTA_OIF, RTA_GATEWAY = 1, 4, 5
RT_TABLE_MAIN = 254
RTPROT_BOOT = 3  # what `ip route add` marks a route with unless told `proto`
RT_SCOPE_UNIVERSE, RT_SCOPE_LINK, RT_SCOPE_NOWHERE = 0, 253, 255
RTN_UNICAST = 1

NDA_DST, NDA_LLADDR = 1, 2
NUD_NOARP, NUD_PERMANENT = 0x40, 0x80
NTF_SELF = 0x02
AF_BRIDGE = 7

NDMSG = struct.Struct('=BxxxiHBB')  # family, index, state, flags, type
IFINFOMSG = struct.Struct('=BxHiII')  # family, type, index, flags, change
IFADDRMSG = struct.Struct('=BBBBi')  # family, prefix length, flags, scope, index
RTMSG = struct.Struct('=BBBBBBBBI')  # family, dst len, src len, tos, table, protocol, scope, type, flags
NLMSGHDR = struct.Struct('=IHHII')  # length, type, flags, sequence, port


class NetlinkError(OSError):
    """The kernel refused a request: errno, and the kernel's own words when it gave some."""

    def __init__(self, code, detail=''):
        super().__init__(code, detail or os.strerror(code))
        self.detail = detail

    def describe(self):
        # The forms `ip` prints, so an error reads the same whichever ran the line.
        if self.detail.startswith('Cannot '):
            return self.detail
        if self.detail:
            return f'Error: {self.detail}' + ('' if self.detail.endswith('.') else '.')
        return f'RTNETLINK answers: {os.strerror(self.errno)}'


def attr(kind, payload):
    return struct.pack('=HH', 4 + len(payload), kind) + payload + b'\0' * (-len(payload) % 4)


def nest(kind, *children):
    return attr(kind | NLA_F_NESTED, b''.join(children))


def text(kind, value):
    return attr(kind, value.encode() + b'\0')


def u8(kind, value):
    return attr(kind, struct.pack('=B', value))


def u32(kind, value):
    return attr(kind, struct.pack('=I', value))


def ipv4(kind, address):
    return attr(kind, socket.inet_aton(address))


def mac(kind, address):
    return attr(kind, bytes.fromhex(address.replace(':', '')))


def open_socket():
    """A route netlink socket in the caller's current network namespace."""
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_ROUTE)
    try:
        sock.setsockopt(SOL_NETLINK, NETLINK_CAP_ACK, 1)  # errors echo only the header of the request
        sock.setsockopt(SOL_NETLINK, NETLINK_EXT_ACK, 1)  # and say what was wrong, as they do for ip
        sock.bind((0, 0))
    except OSError:
        sock.close()
        raise
    return sock


class Link:
    """Requests on one route netlink socket, each answered before the next is sent."""

    def __init__(self, sock):
        self.sock = sock
        self.seq = 0

    def request(self, kind, flags, body):
        """Sends one message and returns the payload of the kernel's answer (None for a plain ACK)."""
        self.seq += 1
        seq = self.seq
        self.sock.send(NLMSGHDR.pack(NLMSGHDR.size + len(body), kind, flags | NLM_F_REQUEST | NLM_F_ACK, seq, 0) + body)
        answer = None
        while True:
            data = self.sock.recv(65536)
            offset = 0
            while offset + NLMSGHDR.size <= len(data):
                length, mtype, mflags, mseq, _port = NLMSGHDR.unpack_from(data, offset)
                if length < NLMSGHDR.size:
                    raise NetlinkError(errno.EPROTO, 'a netlink message shorter than its header')
                payload = data[offset + NLMSGHDR.size:offset + length]
                offset += (length + 3) & ~3
                if mseq != seq:
                    continue  # an answer to an earlier request that gave up
                if mtype != NLMSG_ERROR:
                    answer = payload
                    continue
                code = struct.unpack_from('=i', payload)[0]
                if code < 0:
                    raise NetlinkError(-code, extack_message(payload, mflags))
                return answer

    def index_of(self, name):
        """The interface's index, asked now (see the top of this file for why never cached)."""
        body = IFINFOMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0) + text(IFLA_IFNAME, name) + u32(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS)
        try:
            answer = self.request(RTM_GETLINK, 0, body)
        except NetlinkError as error:
            if error.errno == errno.ENODEV:
                raise NetlinkError(errno.ENODEV, f'Cannot find device "{name}"') from None
            raise
        if answer is None or len(answer) < IFINFOMSG.size:
            raise NetlinkError(errno.EPROTO, f'no link in the answer for "{name}"')
        return IFINFOMSG.unpack_from(answer)[2]

    def add_veth(self, name, peer, options, peer_options):
        """`link add NAME ... type veth peer name PEER ...`; options: mtu, group, address, netns (an open fd or a pid)."""
        peer_attrs = text(IFLA_IFNAME, peer) + link_options(peer_options)
        info = nest(IFLA_LINKINFO, text(IFLA_INFO_KIND, 'veth'),
                    nest(IFLA_INFO_DATA, attr(VETH_INFO_PEER, IFINFOMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0) + peer_attrs)))
        body = IFINFOMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0) + text(IFLA_IFNAME, name) + link_options(options) + info
        self.request(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, body)

    def set_link(self, name, up=None, master=None, mtu=None, alias=None, group=None, address=None, isolated=None):
        """`link set dev NAME ...`: only what is given changes."""
        # By index, as ip does: a request that names a missing link by IFLA_IFNAME alone and
        # carries IFLA_GROUP is applied to every link of that group on kernels before 6.4.
        index = self.index_of(name)
        attrs = []
        if master is not None:
            attrs.append(u32(IFLA_MASTER, self.index_of(master)))
        if mtu is not None:
            attrs.append(u32(IFLA_MTU, mtu))
        if alias is not None:
            attrs.append(text(IFLA_IFALIAS, alias))
        if group is not None:
            attrs.append(u32(IFLA_GROUP, group))
        if address is not None:
            attrs.append(mac(IFLA_ADDRESS, address))
        if isolated is not None:
            attrs.append(nest(IFLA_LINKINFO, text(IFLA_INFO_SLAVE_KIND, 'bridge'),
                              nest(IFLA_INFO_SLAVE_DATA, u8(IFLA_BRPORT_ISOLATED, 1 if isolated else 0))))
        flags = change = 0
        if up is not None:
            change = IFF_UP
            flags = IFF_UP if up else 0
        self.request(RTM_NEWLINK, 0, IFINFOMSG.pack(socket.AF_UNSPEC, 0, index, flags, change) + b''.join(attrs))

    def delete_link(self, name):
        self.request(RTM_DELLINK, 0, IFINFOMSG.pack(socket.AF_UNSPEC, 0, self.index_of(name), 0, 0))

    def add_bridge(self, name, options):
        """`link add NAME [mtu N] [address MAC] type bridge`."""
        body = IFINFOMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0) + text(IFLA_IFNAME, name) + link_options(options)
        self.request(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, body + nest(IFLA_LINKINFO, text(IFLA_INFO_KIND, 'bridge')))

    def change_address(self, verb, address, prefix, device):
        """`addr add|replace|del IP/PREFIX dev NAME`."""
        body = IFADDRMSG.pack(socket.AF_INET, prefix, 0, RT_SCOPE_UNIVERSE, self.index_of(device)) + ipv4(IFA_LOCAL, address) + ipv4(IFA_ADDRESS, address)
        if verb == 'del':
            self.request(RTM_DELADDR, 0, body)
            return
        self.request(RTM_NEWADDR, NLM_F_CREATE | (NLM_F_REPLACE if verb == 'replace' else NLM_F_EXCL), body)

    def change_route(self, verb, dst, prefix, via=None, device=None, protocol=None):
        """`route add|replace|del DST [via IP] [dev NAME] [proto N]` in the main table."""
        attrs = []
        if prefix > 0:
            attrs.append(ipv4(RTA_DST, dst))
        if via is not None:
            attrs.append(ipv4(RTA_GATEWAY, via))
        if device is not None:
            attrs.append(u32(RTA_OIF, self.index_of(device)))
        if verb == 'del':
            # As ip does: match on what is given, any scope and type.
            header = RTMSG.pack(socket.AF_INET, prefix, 0, 0, RT_TABLE_MAIN, protocol or 0, RT_SCOPE_NOWHERE, 0, 0)
            self.request(RTM_DELROUTE, 0, header + b''.join(attrs))
            return
        scope = RT_SCOPE_UNIVERSE if via is not None else RT_SCOPE_LINK
        header = RTMSG.pack(socket.AF_INET, prefix, 0, 0, RT_TABLE_MAIN, RTPROT_BOOT if protocol is None else protocol, scope, RTN_UNICAST, 0)
        flags = NLM_F_CREATE | (NLM_F_REPLACE if verb == 'replace' else NLM_F_EXCL)
        self.request(RTM_NEWROUTE, flags, header + b''.join(attrs))

    def change_neighbour(self, verb, address, lladdr, device):
        """`ip neigh replace IP lladdr MAC dev NAME nud permanent` / `ip neigh del IP dev NAME`."""
        header = NDMSG.pack(socket.AF_INET, self.index_of(device), NUD_PERMANENT if verb == 'replace' else 0, 0, 0)
        if verb == 'del':
            self.request(RTM_DELNEIGH, 0, header + ipv4(NDA_DST, address))
        else:
            self.request(RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_REPLACE, header + ipv4(NDA_DST, address) + mac(NDA_LLADDR, lladdr))

    def change_fdb(self, verb, lladdr, device, dst=None):
        """`bridge fdb replace MAC dev NAME dst IP self permanent` / `bridge fdb del MAC dev NAME self`."""
        # bridge starts from NUD_NOARP and adds `permanent`: the same state, so a write by
        # either does not count as a change of the entry (vxlan notifies on every change).
        header = NDMSG.pack(AF_BRIDGE, self.index_of(device), NUD_NOARP | NUD_PERMANENT, NTF_SELF, 0)
        attrs = mac(NDA_LLADDR, lladdr) + (ipv4(NDA_DST, dst) if dst is not None else b'')
        if verb == 'del':
            self.request(RTM_DELNEIGH, 0, header + attrs)
        else:
            self.request(RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_REPLACE, header + attrs)


def link_options(options):
    attrs = []
    if 'mtu' in options:
        attrs.append(u32(IFLA_MTU, options['mtu']))
    if 'group' in options:
        attrs.append(u32(IFLA_GROUP, options['group']))
    if 'address' in options:
        attrs.append(mac(IFLA_ADDRESS, options['address']))
    if 'netns_fd' in options:
        attrs.append(u32(IFLA_NET_NS_FD, options['netns_fd']))
    if 'netns_pid' in options:
        attrs.append(u32(IFLA_NET_NS_PID, options['netns_pid']))
    return b''.join(attrs)


def extack_message(payload, flags):
    """The kernel's explanation in an error answer, or '' (NETLINK_CAP_ACK: the request's header only is echoed)."""
    if not flags & NLM_F_ACK_TLVS:
        return ''
    offset = 4 + NLMSGHDR.size
    while offset + 4 <= len(payload):
        length, kind = struct.unpack_from('=HH', payload, offset)
        if length < 4:
            break
        if kind == NLMSGERR_ATTR_MSG:
            return payload[offset + 4:offset + length].split(b'\0', 1)[0].decode(errors='replace')
        offset += (length + 3) & ~3
    return ''
