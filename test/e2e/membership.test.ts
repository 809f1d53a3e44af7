// Failure detection on a real 3-host lab with the real transport: a quiet
// cluster never declares anyone dead and stays quiet on the wire (SWIM is a
// datagram per probe, not a stream); kill -9 of an agent is detected by the
// others; the restarted agent refutes and is alive again everywhere.
import test from 'ava';
import { labUp, labDown, restartAgent, waitForAgent, callAgent, type LabState, type LabHost } from '../../deploy/lab/lab.ts';
import { uniquePrefix, eventually } from '../helpers/weft-cli.ts';
import { memberStateChanges } from '../helpers/member-log.ts';
import { ip, switchNamespace } from '../../dataplane/testing/underlay.ts';

const prefix = uniquePrefix('m');
const QUIET_MS = 90_000;
// A probe (ping + ack) as one datagram each way is ~4 packets/s per idle host
// plus the TCP keepalives and periodic syncs (~7 measured); a libp2p stream
// per SWIM packet was ~60. Packet counts do not depend on machine load.
const MAX_IDLE_PACKETS_PER_S = 20;
let lab: LabState;

interface Member { name: string; state: string; incarnation: number }

async function members(host: LabHost): Promise<Member[]> {
  return (await callAgent<{ members: Member[] }>(host, 'Members')).members;
}

/** Packets each host has sent into the lab switch (its switch port's rx counter). */
async function packetsSent(): Promise<Map<string, number>> {
  const links = JSON.parse(await ip('-n', switchNamespace(prefix), '-s', '-j', 'link', 'show')) as Array<{ ifname: string; stats64?: { rx: { packets: number } } }>;
  return new Map(links.map((l) => [l.ifname, l.stats64?.rx.packets ?? 0]));
}

const stateOf = async (observer: LabHost, name: string): Promise<Member | undefined> => (await members(observer)).find((m) => m.name === name);

test.before(async () => {
  lab = await labUp({ hosts: 3, prefix });
});

test.after.always(async () => {
  await labDown(prefix);
});

test.serial(`a quiet lab declares nobody suspect or dead over ${QUIET_MS / 1000} s`, async (t) => {
  const deadline = Date.now() + QUIET_MS;
  const sentBefore = await packetsSent();
  const start = performance.now();
  let samples = 0;
  while (Date.now() < deadline) {
    for (const host of lab.hosts) {
      const states = (await members(host)).map((m) => `${m.name}:${m.state}`);
      t.deepEqual(states.filter((s) => !s.endsWith(':alive')), [], `as seen from ${host.name}`);
    }
    samples++;
    await new Promise((resolve) => setTimeout(resolve, 1_000));
  }
  const sentAfter = await packetsSent();
  const seconds = (performance.now() - start) / 1000;
  for (const host of lab.hosts) {
    const rate = (sentAfter.get(host.name)! - sentBefore.get(host.name)!) / seconds;
    t.true(rate <= MAX_IDLE_PACKETS_PER_S, `${host.name} sent ${rate.toFixed(1)} packets/s while idle (at most ${MAX_IDLE_PACKETS_PER_S})`);
  }
  // Between samples too: the agents log every state change.
  for (const host of lab.hosts) {
    const changes = memberStateChanges(host.logFile).filter((c) => c.state === 'suspect' || c.state === 'dead');
    t.deepEqual(changes, [], `${host.name} logged no suspicion`);
  }
  t.true(samples > 10);
});

test.serial('kill -9 of an agent: the others mark it dead; after a restart it is alive again with a higher incarnation', async (t) => {
  const victim = lab.hosts[2]!;
  const before = (await stateOf(lab.hosts[0]!, victim.name))!;
  process.kill(victim.pid, 'SIGKILL');
  for (const observer of lab.hosts.slice(0, 2)) {
    await eventually(`${observer.name} to mark ${victim.name} dead`, async () => (await stateOf(observer, victim.name))?.state === 'dead', 30_000);
  }
  const restarted = restartAgent(prefix, victim.name);
  await waitForAgent(restarted);
  for (const observer of lab.hosts.slice(0, 2)) {
    const back = await eventually(`${observer.name} to see ${victim.name} alive again`, async () => {
      const m = await stateOf(observer, victim.name);
      return m?.state === 'alive' ? m : undefined;
    }, 30_000);
    t.true(back.incarnation > before.incarnation, 'the restarted node refuted its death with a higher incarnation');
  }
});
