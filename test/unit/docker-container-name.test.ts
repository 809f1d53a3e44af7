// The container's name as the agent reads it from dockerd's API. A restarting
// dockerd starts its restart-policy containers before its API listens, so "not
// listening" means "not yet": the agent keeps asking until its wait is over.
import test from 'ava';
import { createServer, type Server } from 'node:http';
import { mkdtempSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitForContainerName } from '../../agent/docker/container-name.ts';

const NETWORK = 'a'.repeat(64);
const ENDPOINT = 'b'.repeat(64);
const quick = { unreachableMs: 30_000, unlistedMs: 300, wanted: () => true };

function fakeDockerd(socketPath: string, answer: () => { status: number; body: unknown }): Promise<Server> {
  const server = createServer((req, res) => {
    const { status, body } = answer();
    res.writeHead(status, { 'Content-Type': 'application/json' }).end(JSON.stringify(body));
  });
  return new Promise((resolve) => server.listen(socketPath, () => resolve(server)));
}

const listing = (name: string) => ({ status: 200, body: { Containers: { c: { Name: name, EndpointID: ENDPOINT } } } });

function socketIn(t: { teardown: (f: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'weft-docker-name-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return join(dir, 'docker.sock');
}

test('a dockerd whose API listens only after the container started: the name is waited for', async (t) => {
  const socketPath = socketIn(t);
  let server: Server | undefined;
  t.teardown(() => server?.close());
  // The socket does not exist yet (dockerd restoring its containers), then it answers.
  setTimeout(() => void fakeDockerd(socketPath, () => listing('/c5')).then((s) => { server = s; }), 1_000);
  t.deepEqual(await waitForContainerName(socketPath, NETWORK, ENDPOINT, quick), { name: 'c5' });
});

test('dockerd answering without the container: no name after the short wait', async (t) => {
  const socketPath = socketIn(t);
  const server = await fakeDockerd(socketPath, () => ({ status: 200, body: { Containers: {} } }));
  t.teardown(() => server.close());
  t.deepEqual(await waitForContainerName(socketPath, NETWORK, ENDPOINT, quick), { name: '' });
});

test('a name that is not a weft name is left out; an unusable answer is an error, not a wait', async (t) => {
  const socketPath = socketIn(t);
  let reply = listing('/bad name!');
  const server = await fakeDockerd(socketPath, () => reply);
  t.teardown(() => server.close());
  t.deepEqual(await waitForContainerName(socketPath, NETWORK, ENDPOINT, quick), { name: '' });
  reply = { status: 200, body: { Containers: 'nonsense' } } as unknown as typeof reply;
  const answer = await waitForContainerName(socketPath, NETWORK, ENDPOINT, quick);
  t.regex('error' in answer ? answer.error : '', /is not a network/);
  reply = { status: 500, body: { message: 'boom' } } as unknown as typeof reply;
  const failed = await waitForContainerName(socketPath, NETWORK, ENDPOINT, quick);
  t.regex('error' in failed ? failed.error : '', /answered GET .* with 500/);
});

test('a dockerd that never listens: an error naming the socket once the wait is over; a Leave ends the wait at once', async (t) => {
  const socketPath = socketIn(t);
  const gone = await waitForContainerName(socketPath, NETWORK, ENDPOINT, { ...quick, unreachableMs: 500 });
  t.regex('error' in gone ? gone.error : '', /docker\.sock did not answer within 0\.5 s/);
  let wanted = true;
  setTimeout(() => { wanted = false; }, 300);
  t.deepEqual(await waitForContainerName(socketPath, NETWORK, ENDPOINT, { ...quick, wanted: () => wanted }), { name: '' });
});

test('each question opens its own connection: none outlives the socket file it was opened on', async (t) => {
  const socketPath = socketIn(t);
  const server = await fakeDockerd(socketPath, () => listing('/c5'));
  t.teardown(() => server.close());
  t.deepEqual(await waitForContainerName(socketPath, NETWORK, ENDPOINT, quick), { name: 'c5' });
  // dockerd's socket goes (a restart, or hidden by a test) while it still runs.
  renameSync(socketPath, `${socketPath}.away`);
  const answer = await waitForContainerName(socketPath, NETWORK, ENDPOINT, { ...quick, unreachableMs: 300 });
  t.regex('error' in answer ? answer.error : 'answered through a kept-alive connection', /did not answer within/);
});
