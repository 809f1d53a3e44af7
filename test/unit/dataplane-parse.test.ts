// Parsers of iproute2's JSON, fed with output captured from iproute2 6.1 on
// kernel 6.x (see docs/dataplane.md), and the other pure helpers.
import test from 'ava';
import { parseFdb, fdbLines } from '../../dataplane/fdb.ts';
import { parseNeighbours, neighbourLines } from '../../dataplane/neighbours.ts';
import { parseLinks } from '../../dataplane/links.ts';
import { parseBatchFailures } from '../../dataplane/exec.ts';
import { macFromIp, normalizeMac, isUnicastMac } from '../../dataplane/mac.ts';
import { checkNamespaceHome } from '../../dataplane/namespace-home.ts';
import { networkNamespaceName, sandboxNamespaceName, vethNameFor, validateIfName } from '../../dataplane/names.ts';
import { cidrHasAddress, parseCidr, parseIPv4 } from '../../lib/ipv4.ts';
import { realpathSync } from 'node:fs';
import { netnsRef, inNetns } from '../../dataplane/netns.ts';

// `bridge -j fdb show dev vxlan0` in a network namespace after some traffic.
const FDB_SHOW = JSON.parse(`[
 {"mac":"02:42:64:40:00:05","flags":[],"master":"br0","state":""},
 {"mac":"2a:d4:70:95:0f:cc","flags":[],"master":"br0","state":"permanent"},
 {"mac":"00:00:00:00:00:00","dst":"198.18.0.3","linkNetNsId":0,"flags":["self"],"state":"permanent"},
 {"mac":"33:33:00:00:00:01","dst":"198.18.0.3","linkNetNsId":0,"flags":["self"],"state":"permanent"},
 {"mac":"02:42:64:40:00:0f","dst":"198.18.0.8","port":4790,"vni":5,"linkNetNsId":0,"flags":["self"],"state":"permanent"},
 {"mac":"02:42:64:40:00:0e","dst":"198.18.0.8","linkNetNsId":0,"flags":["self"],"state":"static"},
 {"mac":"02:42:64:40:00:05","dst":"198.18.0.2","linkNetNsId":0,"flags":["self"],"state":"permanent"}
]`);

test('parseFdb keeps only unicast self entries with a remote, ignoring the kernel\'s own', (t) => {
  t.deepEqual(parseFdb(FDB_SHOW, 'vxlan0'), [
    { mac: '02:42:64:40:00:0f', vtep: '198.18.0.8', permanent: true, overrides: true },
    { mac: '02:42:64:40:00:0e', vtep: '198.18.0.8', permanent: false, overrides: false },
    { mac: '02:42:64:40:00:05', vtep: '198.18.0.2', permanent: true, overrides: false },
  ]);
  // Unfiltered output names the device: entries of other devices are not ours.
  t.deepEqual(parseFdb([{ mac: '02:42:64:40:00:05', ifname: 'vtest', dst: '198.18.0.2', flags: ['self'], state: 'permanent' }], 'vxlan0'), []);
  t.throws(() => parseFdb({}, 'vxlan0'));
});

test('parseNeighbours keeps IPv4 entries of the device, incomplete ones without a MAC', (t) => {
  const raw = JSON.parse(`[{"dst":"100.64.0.21","lladdr":"02:00:00:00:00:01","state":["STALE"]},
    {"dst":"100.64.0.5","lladdr":"02:42:64:40:00:05","state":["PERMANENT"]},
    {"dst":"100.64.0.20","state":["FAILED"]},
    {"dst":"fe80::1","lladdr":"02:42:64:40:00:05","state":["PERMANENT"]},
    {"dst":"100.64.0.9","dev":"br0","lladdr":"02:42:64:40:00:09","state":["PERMANENT"]}]`);
  t.deepEqual(parseNeighbours(raw, 'vxlan0'), [
    { ip: '100.64.0.21', mac: '02:00:00:00:00:01', permanent: false },
    { ip: '100.64.0.5', mac: '02:42:64:40:00:05', permanent: true },
    { ip: '100.64.0.20', mac: undefined, permanent: false },
  ]);
});

test('batch lines: fdb adds are replaces; neighbour deletes come last', (t) => {
  t.deepEqual(fdbLines([{ op: 'add', mac: '02:42:64:40:00:05', vtep: '198.18.0.2' }, { op: 'delete', mac: '02:42:64:40:00:06' }], 'vxlan0'), [
    'fdb replace 02:42:64:40:00:05 dev vxlan0 dst 198.18.0.2 self permanent',
    'fdb del 02:42:64:40:00:06 dev vxlan0 self',
  ]);
  t.deepEqual(neighbourLines([{ op: 'delete', ip: '100.64.0.6' }, { op: 'add', ip: '100.64.0.5', mac: '02:42:64:40:00:05' }], 'vxlan0'), [
    'neigh replace 100.64.0.5 lladdr 02:42:64:40:00:05 dev vxlan0 nud permanent',
    'neigh del 100.64.0.6 dev vxlan0',
  ]);
});

test('parseLinks reads VXLAN details, ports, veth peers and addresses', (t) => {
  const raw = JSON.parse(`[{"ifindex":2,"link_index":2,"ifname":"vxlan0","flags":["BROADCAST","MULTICAST","UP","LOWER_UP"],"mtu":1350,"master":"br0",
    "address":"2A:d4:70:95:0f:cc","link_netnsid":0,"linkinfo":{"info_kind":"vxlan","info_data":{"id":77,"local":"198.18.0.1","port":4789,"learning":false,"proxy":true},
    "info_slave_kind":"bridge"},"addr_info":[{"family":"inet6","local":"fe80::1","prefixlen":64}]},
    {"ifindex":4,"ifname":"br0","flags":["BROADCAST"],"mtu":1350,"address":"02:42:64:40:00:01","linkinfo":{"info_kind":"bridge","info_data":{}},
    "addr_info":[{"family":"inet","local":"100.64.0.1","prefixlen":24}]}]`);
  const [vxlan, br] = parseLinks(raw);
  t.deepEqual(vxlan?.vxlan, { vni: 77, local: '198.18.0.1', port: 4789, learning: false, proxy: true });
  t.is(vxlan?.mac, '2a:d4:70:95:0f:cc');
  t.true(vxlan?.up);
  t.is(vxlan?.linkNetnsId, 0);
  t.is(vxlan?.master, 'br0');
  t.deepEqual(vxlan?.ipv4, []);
  t.false(br?.up);
  t.deepEqual(br?.ipv4, [{ address: '100.64.0.1', prefixLength: 24 }]);
});

test('parseBatchFailures names each failed line; ip neigh failures have no line', (t) => {
  const lines = ['fdb replace a', 'fdb del b', 'fdb del c', 'fdb del d'];
  t.deepEqual(parseBatchFailures('RTNETLINK answers: No such file or directory\nCommand failed -:2\nRTNETLINK answers: No such file or directory\nCommand failed -:4\n', lines), [
    { lineNumber: 2, line: 'fdb del b', message: 'RTNETLINK answers: No such file or directory' },
    { lineNumber: 4, line: 'fdb del d', message: 'RTNETLINK answers: No such file or directory' },
  ]);
  t.deepEqual(parseBatchFailures('RTNETLINK answers: File exists\n', lines), [{ lineNumber: undefined, line: undefined, message: 'RTNETLINK answers: File exists' }]);
});

test('macFromIp: 02:42 + the IPv4 bytes, locally administered unicast', (t) => {
  t.is(macFromIp('100.64.0.5'), '02:42:64:40:00:05');
  t.is(macFromIp('100.127.255.254'), '02:42:64:7f:ff:fe');
  t.true(isUnicastMac(macFromIp('100.64.1.1')));
  t.false(isUnicastMac('01:00:5e:00:00:01'));
  t.false(isUnicastMac('00:00:00:00:00:00'));
  t.is(normalizeMac('02:42:64:40:00:0A'), '02:42:64:40:00:0a');
  t.throws(() => macFromIp('100.64.0.256'));
  t.throws(() => normalizeMac('02:42:64:40:00'));
});

test('names: prefixed namespaces, 15-character interfaces, stable veth names', (t) => {
  t.is(networkNamespaceName('weftlab-h1', 4097), 'weftlab-h1-n4097');
  t.is(sandboxNamespaceName('weft', 'web1'), 'weft-sweb1');
  t.throws(() => networkNamespaceName('weft', 0));
  t.throws(() => networkNamespaceName('a b', 5));
  const veth = vethNameFor('name:weft-sweb1', 'weft-n4097');
  t.regex(veth, /^v[0-9a-f]{12}$/);
  t.is(veth, vethNameFor('name:weft-sweb1', 'weft-n4097'));
  t.not(veth, vethNameFor('name:weft-sweb1', 'weft-n4098'));
  t.notThrows(() => validateIfName(veth));
  t.throws(() => validateIfName('sixteen-chars-xx'));
});

test('ipv4 helpers', (t) => {
  t.throws(() => parseCidr('100.64.1.7/24'), { message: /host bits set/ });
  t.true(cidrHasAddress(parseCidr('100.64.1.0/24'), parseIPv4('100.64.1.200')));
  t.false(cidrHasAddress(parseCidr('100.64.1.0/24'), parseIPv4('100.64.2.1')));
  t.throws(() => parseIPv4('1.2.3'));
  t.throws(() => parseIPv4('01.2.3.4'));
  t.throws(() => parseCidr('100.64.1.0/33'));
});

test('namespace refs: names use ip -n, paths go through nsenter', (t) => {
  t.deepEqual(inNetns(netnsRef('weft-sa'), 'ip', ['link']), ['ip', ['-n', 'weft-sa', 'link']]);
  t.deepEqual(inNetns(netnsRef('/proc/42/ns/net'), 'bridge', ['fdb']), ['nsenter', ['--net=/proc/42/ns/net', '--', 'bridge', 'fdb']]);
  // Paths a CNI runtime hands over: under /run/netns, ip's own -n reaches them without nsenter.
  t.deepEqual(inNetns(netnsRef('/run/netns/cni-1234'), 'ip', ['link']), ['ip', ['-n', 'cni-1234', 'link']]);
  const varRunIsRun = realpathSync('/var/run') === '/run';
  t.deepEqual(inNetns(netnsRef('/var/run/netns/cni-1234'), 'ip', ['link']), varRunIsRun ? ['ip', ['-n', 'cni-1234', 'link']] : ['nsenter', ['--net=/var/run/netns/cni-1234', '--', 'ip', 'link']]);
  t.deepEqual(inNetns(netnsRef('/run/netns/cni-1234'), 'nft', ['list']), ['nsenter', ['--net=/run/netns/cni-1234', '--', 'nft', 'list']]);
  t.deepEqual(inNetns(netnsRef('/run/netns/sub/x'), 'ip', ['link']), ['nsenter', ['--net=/run/netns/sub/x', '--', 'ip', 'link']]);
  t.throws(() => netnsRef('bad name'));
  // A path ends up in `ip -batch` lines: a comment or a quote there would change what ip reads.
  for (const path of ['/tmp/a#b', '/tmp/a"b', "/tmp/a'b", '/tmp/a b', '/tmp/a\\b', 'relative/x']) t.throws(() => netnsRef(path), { message: /must be absolute and made of/ });
});

test('checkNamespaceHome flags a slave mount namespace (ip netns exec) and accepts the host\'s', (t) => {
  const host = [
    '27 1 254:0 / / rw,relatime - ext4 /dev/vda rw',
    '42 27 254:0 /run/netns /run/netns rw,relatime shared:1 - ext4 /dev/vda rw',
  ].join('\n');
  t.is(checkNamespaceHome(host), undefined);
  const underIpNetnsExec = [
    '45 44 254:0 / / rw,relatime master:5 - ext4 /dev/vda rw',
    '65 45 254:0 /run/netns /run/netns rw,relatime master:1 - ext4 /dev/vda rw',
  ].join('\n');
  t.regex(checkNamespaceHome(underIpNetnsExec)?.problem ?? '', /slave/);
  // No /run/netns mount yet: the root mount decides.
  t.is(checkNamespaceHome('27 1 254:0 / / rw,relatime - ext4 /dev/vda rw'), undefined);
  t.truthy(checkNamespaceHome('45 44 254:0 / / rw,relatime master:5 - ext4 /dev/vda rw'));
});
