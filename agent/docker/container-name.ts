// The container's name for an endpoint, read back from dockerd's API: Docker
// 20.10 sends a remote driver no container name or label (CreateEndpoint's
// options are the DNS servers, exposed ports and port map only), but
// `GET /networks/<id>` lists each attached container with its endpoint ID and
// name. Asked only after dockerd has moved the interface (never while it waits
// on one of our answers), with a short timeout and a bounded, checked answer:
// without an answer the endpoint is published without a name.
import { request } from 'node:http';
import { z } from 'zod';
import { OBJECT_NAME } from '../../lib/names.ts';

const MAX_ANSWER_BYTES = 4 * 1024 * 1024;
const TIMEOUT_MS = 3_000;

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
    const req = request({ socketPath, path, method: 'GET', timeout: TIMEOUT_MS, headers: { Host: 'docker' } }, (res) => {
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
    req.once('timeout', () => req.destroy(new Error(`dockerd did not answer GET ${path} within ${TIMEOUT_MS} ms`)));
    req.once('error', reject);
    req.end();
  });
}
