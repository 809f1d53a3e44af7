# Reads the `ip` batch lines the data plane writes on a container's start and
# stop into operations for rtnetlink.py. Only these shapes:
#   link add NAME [mtu N] [group N] [address MAC] [netns NS] type veth peer name NAME [mtu N] [address MAC] [netns NS]
#   link add NAME [mtu N] [address MAC] type bridge
#   link set dev NAME {up | down | master NAME | mtu N | alias TEXT | group N | address MAC | type bridge_slave isolated on|off}...
#   link del[ete] dev NAME
#   addr add|replace|del IPV4/PREFIX dev NAME
#   route add|replace|del[ete] default|IPV4[/PREFIX] [via IPV4] [dev NAME] [proto N]
#   neigh replace IPV4 lladdr MAC dev NAME nud permanent
#   neigh del IPV4 dev NAME
# and of `bridge`:
#   fdb replace MAC dev NAME dst IPV4 self permanent
#   fdb del MAC dev NAME self
# Anything else is None: the caller then gives the whole batch to the real
# `ip`, so a line this does not know is never guessed at. Words are split as
# ip splits them (blanks and tabs) and may hold printable ASCII only, without
# quotes, backslashes or `#`, which ip would read otherwise.
import re

NAME = re.compile(r'^[A-Za-z0-9_.+-]{1,15}$')  # the kernel refuses '/', ':' and blanks
MAC = re.compile(r'^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$')
IPV4 = re.compile(r'^(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])){3}$')
NUMBER = re.compile(r'^(0|[1-9][0-9]{0,9})$')
NETNS_NAME = re.compile(r'^[A-Za-z0-9_.-]{1,64}$')
WORD = re.compile(r'^[!-~]+$')
ALIAS = re.compile(r'^[!-~]{1,255}$')  # one token, as the data plane writes it; the kernel keeps 255 bytes
QUOTED = re.compile(r'[\'"\\#]')


class Unknown(Exception):
    """A line outside the shapes above."""


def parse(line, tool='ip'):
    """The operation for one line of `tool` (ip or bridge), or None when it is not one of the shapes above."""
    words = [word for word in re.split(r'[ \t]+', line) if word]
    if any(not WORD.match(word) or QUOTED.search(word) for word in words):
        return None
    try:
        return parse_words(words) if tool == 'ip' else parse_bridge(words)
    except Unknown:
        return None


def parse_bridge(words):
    if len(words) == 9 and words[:2] == ['fdb', 'replace'] and words[3] == 'dev' and words[5] == 'dst' and words[7:] == ['self', 'permanent']:
        return ('change_fdb', {'verb': 'replace', 'lladdr': check('address', words[2]), 'device': name(words[4]), 'dst': ipv4(words[6])})
    if len(words) == 6 and words[:2] == ['fdb', 'del'] and words[3] == 'dev' and words[5] == 'self':
        return ('change_fdb', {'verb': 'del', 'lladdr': check('address', words[2]), 'device': name(words[4])})
    raise Unknown


def parse_words(words):
    if len(words) < 2:
        raise Unknown
    noun, verb, rest = words[0], words[1], words[2:]
    if noun == 'link' and verb == 'add':
        return parse_veth(rest)
    if noun == 'link' and verb == 'set':
        return parse_set(rest)
    if noun == 'link' and verb in ('del', 'delete'):
        if len(rest) != 2 or rest[0] != 'dev':
            raise Unknown
        return ('delete_link', {'name': name(rest[1])})
    if noun in ('addr', 'address') and verb in ('add', 'replace', 'del', 'delete'):
        if len(rest) != 3 or rest[1] != 'dev':
            raise Unknown
        address, prefix = cidr(rest[0], default_prefix=None)
        return ('change_address', {'verb': 'del' if verb == 'delete' else verb, 'address': address, 'prefix': prefix, 'device': name(rest[2])})
    if noun == 'route' and verb in ('add', 'replace', 'del', 'delete'):
        return parse_route('del' if verb == 'delete' else verb, rest)
    if noun in ('neigh', 'neighbour', 'neighbor') and verb == 'replace':
        if len(rest) != 7 or rest[1] != 'lladdr' or rest[3] != 'dev' or rest[5:] != ['nud', 'permanent']:
            raise Unknown
        return ('change_neighbour', {'verb': 'replace', 'address': ipv4(rest[0]), 'lladdr': check('address', rest[2]), 'device': name(rest[4])})
    if noun in ('neigh', 'neighbour', 'neighbor') and verb in ('del', 'delete'):
        if len(rest) != 3 or rest[1] != 'dev':
            raise Unknown
        return ('change_neighbour', {'verb': 'del', 'address': ipv4(rest[0]), 'lladdr': None, 'device': name(rest[2])})
    raise Unknown


def parse_veth(words):
    if not words:
        raise Unknown
    own, tail = take_options(words[1:], ('mtu', 'group', 'address', 'netns'))
    if tail == ['type', 'bridge'] and 'group' not in own and 'netns' not in own:
        return ('add_bridge', {'name': name(words[0]), 'options': own})
    if tail[:4] != ['type', 'veth', 'peer', 'name'] or len(tail) < 5:
        raise Unknown
    peer, rest = take_options(tail[5:], ('mtu', 'address', 'netns'))
    if rest:
        raise Unknown
    return ('add_veth', {'name': name(words[0]), 'peer': name(tail[4]), 'options': own, 'peer_options': peer})


def take_options(words, allowed):
    """Leading `key value` pairs among `allowed`, checked; returns them and the words after."""
    options = {}
    i = 0
    while i + 1 < len(words) and words[i] in allowed:
        key, value = words[i], words[i + 1]
        if key in options:
            raise Unknown
        options[key] = check(key, value)
        i += 2
    return options, words[i:]


def check(key, value):
    if key in ('mtu', 'group', 'proto'):
        return number(value)
    if key == 'address':
        if not MAC.match(value):
            raise Unknown
        return value.lower()
    if key == 'netns':
        # /proc/self would be the worker's own namespace, not the one ip would run in.
        if value.startswith('/') and not re.match(r'^/proc/(self|thread-self)(/|$)', value) and len(value) < 4096:
            return value
        if NETNS_NAME.match(value) and value not in ('.', '..'):
            return value
        raise Unknown
    raise Unknown


def parse_set(words):
    if len(words) < 3 or words[0] != 'dev':
        raise Unknown
    op = {'name': name(words[1])}
    rest = words[2:]
    while rest:
        word = rest[0]
        if word in ('up', 'down') and 'up' not in op:
            op['up'] = word == 'up'
            rest = rest[1:]
        elif word == 'type' and rest[1:3] == ['bridge_slave', 'isolated'] and len(rest) >= 4 and rest[3] in ('on', 'off') and 'isolated' not in op:
            op['isolated'] = rest[3] == 'on'
            rest = rest[4:]
        elif word in ('master', 'mtu', 'alias', 'group', 'address') and len(rest) >= 2 and word not in op:
            value = rest[1]
            if word == 'master':
                op['master'] = name(value)
            elif word == 'alias':
                if not ALIAS.match(value):
                    raise Unknown
                op['alias'] = value
            else:
                op[word] = check(word, value)
            rest = rest[2:]
        else:
            raise Unknown
    return ('set_link', op)


def parse_route(verb, words):
    if not words:
        raise Unknown
    if words[0] == 'default':
        dst, prefix = '0.0.0.0', 0
    else:
        dst, prefix = cidr(words[0], default_prefix=32)
    options, rest = take_route_options(words[1:])
    if rest:
        raise Unknown
    return ('change_route', {'verb': verb, 'dst': dst, 'prefix': prefix, **options})


def take_route_options(words):
    options = {}
    keys = {'via': 'via', 'dev': 'device', 'proto': 'protocol'}
    i = 0
    while i + 1 < len(words) and words[i] in keys and keys[words[i]] not in options:
        key, value = words[i], words[i + 1]
        if key == 'via':
            if not IPV4.match(value):
                raise Unknown
            options['via'] = value
        elif key == 'dev':
            options['device'] = name(value)
        else:
            options['protocol'] = number(value)
            if options['protocol'] > 255:
                raise Unknown
        i += 2
    return options, words[i:]


def cidr(value, default_prefix):
    address, _, prefix = value.partition('/')
    if not IPV4.match(address):
        raise Unknown
    if prefix == '':
        if default_prefix is None:
            raise Unknown
        return address, default_prefix
    length = number(prefix)
    if length > 32:
        raise Unknown
    return address, length


def ipv4(value):
    if not IPV4.match(value):
        raise Unknown
    return value


def name(value):
    if not NAME.match(value) or value in ('.', '..'):
        raise Unknown
    return value


def number(value):
    if not NUMBER.match(value) or int(value) > 0xFFFFFFFF:
        raise Unknown
    return int(value)
