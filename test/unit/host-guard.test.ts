// The host guard as text and as read back: what the tables render to, which
// updates touch which set, which inputs are refused, who counts as a member,
// and how a listing from nft (captured from nft 1.0.6) compares with the
// desired state.
import test from 'ava';
import { readFileSync } from 'node:fs';
import { renderHostGuard, renderMembersUpdate, renderPinsUpdate, updateGuardPins, type HostGuardState } from '../../dataplane/host-guard.ts';
import type { Runner } from '../../dataplane/exec.ts';
import { compareGuard, desiredGuardBridge, desiredGuardIp, parseGuardListing } from '../../dataplane/host-guard-inspect.ts';
import { guardMembers } from '../../agent/overlay/host-guard.ts';
import { Roster, type MemberRecord } from '../../controlplane/cluster/roster.ts';
import { EGRESS_PORT_GROUP } from '../../dataplane/egress.ts';

// The state the fixtures were listed from.
const state: HostGuardState = {
  vteps: ['198.18.0.3', '198.18.0.2', '198.18.0.3'],
  clusterPorts: [
    { address: '198.18.0.1', protocol: 'udp', port: 4789 },
    { address: '198.18.0.1', protocol: 'tcp', port: 7946 },
    { address: '198.18.0.2', protocol: 'tcp', port: 2377 },
  ],
  pins: [{ port: 'g0123456789ab', mac: '02:42:C6:13:FF:02', ip: '198.19.255.2' }],
  gateway: '198.19.255.1',
};
const fixture = (name: string) => readFileSync(new URL(`fixtures/${name}`, import.meta.url), 'utf8');

test('both tables are replaced in one transaction, with sorted unique elements', (t) => {
  const script = renderHostGuard(state);
  t.true(script.startsWith('table ip weft_guard\ndelete table ip weft_guard\ntable ip weft_guard {'));
  t.regex(script, /table bridge weft_guard\ndelete table bridge weft_guard\ntable bridge weft_guard \{/);
  t.regex(script, /elements = \{ 198\.18\.0\.2, 198\.18\.0\.3 \}/);
  t.regex(script, /elements = \{ 198\.18\.0\.1 \. tcp \. 7946, 198\.18\.0\.1 \. udp \. 4789, 198\.18\.0\.2 \. tcp \. 2377 \}/);
  t.regex(script, /elements = \{ "g0123456789ab" \. 02:42:c6:13:ff:02 \. 198\.19\.255\.2 \}/, 'MACs normalised');
  t.regex(script, /udp dport 4789 ip saddr != @vteps drop/);
  t.regex(script, /ip daddr 198\.19\.255\.1 iifname != \{ "weft_gw", "lo" \} drop/, 'the gateway address serves sandboxes and this host only');
  t.regex(script, new RegExp(`meta iifgroup != ${EGRESS_PORT_GROUP} accept`));
});

test('the forward chain: sandboxes never reach cluster ports; into the bridge only replies and the published chain', (t) => {
  const forward = /chain forward \{\n([^}]*)\}/.exec(renderHostGuard(state))![1]!.split('\n').map((l) => l.trim()).filter((l) => l !== '');
  t.deepEqual(forward.slice(1), [
    'iifname "weft_gw" ip daddr . meta l4proto . th dport @cluster_ports drop',
    'oifname "weft_gw" ct state established,related accept',
    'oifname "weft_gw" jump published',
    'oifname "weft_gw" drop',
  ]);
  t.regex(renderHostGuard(state), /chain published \{\n {4}ct status dnat accept\n {2}\}/, 'only flows this host DNATed (published ports)');
});

test('empty sets render without elements (nft refuses an empty elements list)', (t) => {
  const script = renderHostGuard({ vteps: [], clusterPorts: [], pins: [], gateway: '198.19.255.1' });
  t.notRegex(script, /elements/);
  t.is(renderMembersUpdate({ vteps: [], clusterPorts: [] }), 'flush set ip weft_guard vteps\nflush set ip weft_guard cluster_ports\n');
});

test('a member change touches only the member sets, a sandbox change only the pins', (t) => {
  const members = renderMembersUpdate(state);
  t.is(members, [
    'flush set ip weft_guard vteps',
    'add element ip weft_guard vteps { 198.18.0.2, 198.18.0.3 }',
    'flush set ip weft_guard cluster_ports',
    'add element ip weft_guard cluster_ports { 198.18.0.1 . tcp . 7946, 198.18.0.1 . udp . 4789, 198.18.0.2 . tcp . 2377 }',
  ].join('\n') + '\n');
  t.is(renderPinsUpdate(state.pins), 'flush set bridge weft_guard pins\nadd element bridge weft_guard pins { "g0123456789ab" . 02:42:c6:13:ff:02 . 198.19.255.2 }\n');
});

test('with an nft worker (the agent\'s), a pin change starts no process; without a working worker, an nft process does it', async (t) => {
  const spawned: string[] = [];
  let tableMissing = false;
  const runner: Runner = async (file, _args, input) => {
    spawned.push(file);
    if (tableMissing && (input ?? '').startsWith('flush set')) return { exitCode: 1, stdout: '', stderr: 'Error: No such file or directory' };
    return { exitCode: 0, stdout: '', stderr: '' };
  };
  const scripts: string[] = [];
  let workerDead = false;
  const nftScript = async (script: string): Promise<void> => {
    if (workerDead) throw new Error('the nft worker is closed');
    scripts.push(script);
    if (tableMissing && script.startsWith('flush set')) throw new Error('Error: No such file or directory');
  };
  const ctx = { nsPrefix: 'hg', runner, nftScript };
  await updateGuardPins(ctx, state);
  t.deepEqual(scripts, [renderPinsUpdate(state.pins)]);
  t.deepEqual(spawned, []);
  // The table is missing: the worker and nft both refuse the update, so both tables are written whole.
  tableMissing = true;
  await updateGuardPins(ctx, state);
  t.deepEqual(scripts.slice(1), [renderPinsUpdate(state.pins), renderHostGuard(state)]);
  t.deepEqual(spawned, ['nft']);
  // The worker cannot run: the guard does not depend on it.
  tableMissing = false;
  workerDead = true;
  await updateGuardPins(ctx, state);
  t.deepEqual(spawned, ['nft', 'nft']);
});

test('hostile values never reach the script', (t) => {
  t.throws(() => renderHostGuard({ ...state, vteps: ['198.18.0.2 } ; flush ruleset ; {'] }), { message: /not an IPv4 address/ });
  t.throws(() => renderHostGuard({ ...state, gateway: '198.19.255.1; drop' }), { message: /not an IPv4 address/ });
  t.throws(() => renderHostGuard({ ...state, pins: [{ port: 'g" . x', mac: '02:42:00:00:00:01', ip: '198.19.255.2' }] }), { message: /not an interface name/ });
  t.throws(() => renderPinsUpdate([{ port: 'gabc', mac: 'zz', ip: '198.19.255.2' }]), { message: /not a MAC address/ });
  t.throws(() => renderMembersUpdate({ vteps: [], clusterPorts: [{ address: '198.18.0.1', protocol: 'tcp', port: 70000 }] }), { message: /not a port number/ });
});

const record = (nodeId: string, address: string, status: MemberRecord['status'], ports: Partial<MemberRecord> = {}): MemberRecord => ({
  nodeId, name: nodeId, peerId: `p-${nodeId}`, address, gossipPort: 7946, admissionPort: 2377, certificate: new Uint8Array(), version: 1, status, changedBy: nodeId, ...ports,
});

test('members: every active member but self may send VXLAN; left and removed ones may not; every active member\'s ports (SWIM\'s UDP one too) are closed to sandboxes', (t) => {
  const members = guardMembers([
    record('self', '198.18.0.1', 'active', { gossipPort: 8946 }),
    record('b', '198.18.0.2', 'active'), // alive or dead: liveness does not change this
    record('c', '198.18.0.3', 'left'),
    record('d', '198.18.0.4', 'revoked'),
    record('e', 'not-an-address', 'active'),
    record('f', '198.18.0.6', 'active', { admissionPort: 0 }),
  ], 'self');
  t.deepEqual(members.vteps, ['198.18.0.2', '198.18.0.6']);
  t.deepEqual(new Set(members.clusterPorts.map((p) => `${p.address} ${p.protocol} ${p.port}`)), new Set([
    '198.18.0.1 udp 4789', '198.18.0.1 tcp 8946', '198.18.0.1 tcp 2377', '198.18.0.1 udp 8946',
    '198.18.0.2 udp 4789', '198.18.0.2 tcp 7946', '198.18.0.2 tcp 2377', '198.18.0.2 udp 7946',
    '198.18.0.6 udp 4789', '198.18.0.6 tcp 7946', '198.18.0.6 udp 7946',
  ]));
  t.notThrows(() => renderMembersUpdate(members), 'a bad record is skipped, never stops the others');
});

test('the roster tells its listeners about every change and nothing else', (t) => {
  const roster = new Roster();
  const seen: string[] = [];
  const stop = roster.onChange((r) => seen.push(`${r.nodeId}:${r.status}:${r.version}`));
  roster.merge(record('a', '198.18.0.1', 'active'));
  roster.merge(record('a', '198.18.0.1', 'active')); // same version: ignored
  roster.merge({ ...record('a', '198.18.0.1', 'revoked'), version: 2 });
  stop();
  roster.merge(record('b', '198.18.0.2', 'active'));
  t.deepEqual(seen, ['a:active:1', 'a:revoked:2']);
});

test('a listing of the tables as applied matches the desired state', (t) => {
  t.deepEqual(compareGuard('ip weft_guard', desiredGuardIp(state), parseGuardListing(fixture('host-guard-ip.json'))), []);
  t.deepEqual(compareGuard('bridge weft_guard', desiredGuardBridge(state.pins), parseGuardListing(fixture('host-guard-bridge.json'))), []);
});

test('each difference is named: a missing or extra element, a rule turned into accept, a missing table', (t) => {
  const fewer = { ...state, vteps: ['198.18.0.2'] };
  t.deepEqual(compareGuard('ip weft_guard', desiredGuardIp(fewer), parseGuardListing(fixture('host-guard-ip.json'))),
    ['ip weft_guard: unexpected VXLAN source 198.18.0.3 in set vteps']);
  const more = { ...state, pins: [...state.pins, { port: 'gffffffffffff', mac: '02:42:c6:13:ff:03', ip: '198.19.255.3' }] };
  t.deepEqual(compareGuard('bridge weft_guard', desiredGuardBridge(more.pins), parseGuardListing(fixture('host-guard-bridge.json'))),
    ['bridge weft_guard: sandbox port pin gffffffffffff 02:42:c6:13:ff:03 198.19.255.3 is missing from set pins']);
  const tampered = fixture('host-guard-ip.json').replace('"drop": null', '"accept": null');
  t.deepEqual(compareGuard('ip weft_guard', desiredGuardIp(state), parseGuardListing(tampered)),
    ['ip weft_guard: chain input is "input/accept, accept, drop, drop", should be "input/accept, drop, drop, drop"']);
  t.deepEqual(compareGuard('ip weft_guard', desiredGuardIp(state), undefined), ['table ip weft_guard is missing']);
});
