// The container's name for an endpoint, read back from dockerd's API: Docker
// 20.10 sends a remote driver no container name or label (CreateEndpoint's
// options are the DNS servers, exposed ports and port map only), but
// `GET /networks/<id>` lists each attached container with its endpoint ID and
// name. Asked only after dockerd has moved the interface (never while it waits
// on one of our answers), with a short timeout and a bounded, checked answer:
// without an answer the endpoint is published without a name.
//
// A dockerd that is starting restores its restart-policy containers before its
// API listens, so "connection refused" then means "not yet", not "never". The
// name is waited for briefly before the container is attached (it should not
// wait for connectivity), then, if it is still unknown, for as long as a
// dockerd may take to start, and the attachment is named when it comes.
import { request } from 'node:http';
import { z } from 'zod';
import { OBJECT_NAME } from '../../lib/names.ts';

const MAX_ANSWER_BYTES = 4 * 1024 * 1024;
const TIMEOUT_MS = 3_000;
const RETRY_MS = 100;

/** How long to wait for the name: while dockerd does not answer, and once it answers without listing the container. */
export interface NameWait {
  unreachableMs: number;
  unlistedMs: number;
  /** False once the endpoint is no longer waited for (Docker sent Leave): the wait ends at once. */
  wanted: () => boolean;
}
export type NameWaitLimits = Omit<NameWait, 'wanted'>;

/** Before attaching, then after attaching unnamed (a dockerd restoring many containers on a busy host can take minutes). */
export interface NameWaits { beforeAttach: NameWaitLimits; afterAttach: NameWaitLimits }
export const NAME_WAITS: NameWaits = {
  beforeAttach: { unreachableMs: 10_000, unlistedMs: 3_000 },
  afterAttach: { unreachableMs: 10 * 60_000, unlistedMs: 60_000 },
};

/** Errors that mean dockerd's API is not listening (yet): a starting or restarting dockerd. */
const NOT_LISTENING = new Set(['ECONNREFUSED', 'ENOENT', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT']);

export type NameAnswer = { name: string } | { error: string };

/**
 * The container's name once dockerd lists it; '' when dockerd lists it under a name that is
 * not a weft name, or does not list it within `wait`; an error when its answer is unusable
 * or it never answered.
 */
export async function waitForContainerName(dockerSocket: string, dockerNetworkId: string, endpointId: string, wait: NameWait): Promise<NameAnswer> {
  const started = Date.now();
  let answeredAt: number | undefined;
  for (;;) {
    if (!wait.wanted()) return { name: '' };
    try {
      const name = await containerNameOf(dockerSocket, dockerNetworkId, endpointId);
      if (name !== undefined) return { name };
      answeredAt ??= Date.now();
      if (Date.now() - answeredAt > wait.unlistedMs) return { name: '' };
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? '';
      if (!NOT_LISTENING.has(code)) return { error: (error as Error).message };
      if (Date.now() - started > wait.unreachableMs) return { error: `dockerd's API at ${dockerSocket} did not answer within ${wait.unreachableMs / 1000} s: ${(error as Error).message}` };
    }
    await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
  }
}

const networkAnswer = z.object({
  Containers: z.record(z.string(), z.object({ Name: z.string(), EndpointID: z.string() })).nullish(),
});

/** The name of the container attached through `endpointId`; undefined when dockerd does not (yet) list it. */
export async function containerNameOf(dockerSocket: string, dockerNetworkId: string, endpointId: string): Promise<string | undefined> {
  if (!/^[0-9a-f]{64}$/.test(dockerNetworkId)) throw new Error(`"${dockerNetworkId}" is not a Docker network ID`);
  const parsed = networkAnswer.safeParse(JSON.parse(await get(dockerSocket, `/networks/${dockerNetworkId}`)));
  if (!parsed.success) throw new Error(`dockerd's answer to GET /networks/${dockerNetworkId.slice(0, 12)} is not a network: ${parsed.error.issues[0]?.message}`);
  const found = Object.values(parsed.data.Containers ?? {}).find((c) => c.EndpointID === endpointId);
  if (!found) return undefined;
  const name = found.Name.replace(/^\//, '');
  return OBJECT_NAME.test(name) ? name : undefined;
}

function get(socketPath: string, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    // agent: false: a connection per question. A pooled one would outlive the socket file it was
    // opened on (dockerd restarting, or the test that hides the socket), and questions are rare.
    const req = request({ socketPath, path, method: 'GET', timeout: TIMEOUT_MS, agent: false, headers: { Host: 'docker' } }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_ANSWER_BYTES) {
          req.destroy(new Error(`dockerd's answer is over ${MAX_ANSWER_BYTES} bytes`));
          return;
        }
        chunks.push(chunk);
      });
      res.once('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        if (res.statusCode !== 200) reject(new Error(`dockerd answered GET ${path} with ${res.statusCode}: ${text.slice(0, 200)}`));
        else resolve(text);
      });
      res.once('error', reject);
    });
    req.once('timeout', () => req.destroy(Object.assign(new Error(`dockerd did not answer GET ${path} within ${TIMEOUT_MS} ms`), { code: 'ETIMEDOUT' })));
    req.once('error', reject);
    req.end();
  });
}
