// `weft service create --publish`, as `docker service create --publish` reads
// it: the short form PUBLISHED:TARGET[/tcp|udp] or the long form
// published=P,target=T[,protocol=tcp|udp][,mode=ingress|host]. Pure: the CLI and
// the API server parse the same text, and every error says what to type.

export interface ServicePublication {
  /** The port every host of the cluster accepts on (the ingress routing mesh). */
  published: number;
  /** The backends' port. */
  target: number;
  protocol: 'tcp' | 'udp';
  /** ingress: every host accepts (the mesh); host: only hosts running a backend, straight to it. */
  mode: 'ingress' | 'host';
}

/** A service publishes at most this many ports: each is a map element on every host. */
export const MAX_SERVICE_PUBLICATIONS = 64;

const USAGE = 'write PUBLISHED:TARGET[/tcp|udp] (e.g. 8080:80, 5353:53/udp) or published=8080,target=80[,protocol=udp]';

export class ServicePublishError extends Error {}

function port(text: string | undefined, what: string, spec: string): number {
  const n = Number(text);
  if (text === undefined || !/^\d{1,5}$/.test(text) || n < 1 || n > 65_535) throw new ServicePublishError(`--publish "${spec}": the ${what} port must be 1-65535, got "${text ?? ''}"`);
  return n;
}

function protocol(text: string | undefined, spec: string): 'tcp' | 'udp' {
  if (text === undefined || text === 'tcp' || text === 'udp') return text ?? 'tcp';
  throw new ServicePublishError(`--publish "${spec}": the protocol is tcp or udp, not "${text}"`);
}

function longForm(spec: string): ServicePublication {
  const fields = new Map<string, string>();
  for (const part of spec.split(',')) {
    const [key = '', value, extra] = part.split('=');
    if (value === undefined || extra !== undefined || !['published', 'target', 'protocol', 'mode'].includes(key)) throw new ServicePublishError(`--publish "${spec}": "${part}" is not published=, target=, protocol= or mode=; ${USAGE}`);
    if (fields.has(key)) throw new ServicePublishError(`--publish "${spec}": ${key}= is given twice`);
    fields.set(key, value);
  }
  const mode = fields.get('mode') ?? 'ingress';
  if (mode !== 'ingress' && mode !== 'host') throw new ServicePublishError(`--publish "${spec}": mode is ingress (every host) or host (hosts running a backend), not "${mode}"`);
  return { published: port(fields.get('published'), 'published', spec), target: port(fields.get('target'), 'target', spec), protocol: protocol(fields.get('protocol'), spec), mode };
}

/** Parses one `--publish` value. */
export function parseServicePublication(spec: string): ServicePublication {
  if (spec.includes('=')) return longForm(spec);
  const match = /^(\d{1,5}):(\d{1,5})(?:\/([a-z]+))?$/.exec(spec);
  if (!match) throw new ServicePublishError(`--publish "${spec}" is not a service publication: ${USAGE}`);
  return { published: port(match[1], 'published', spec), target: port(match[2], 'target', spec), protocol: protocol(match[3], spec), mode: 'ingress' };
}

/** Parses every `--publish` value; a published port given twice (same protocol) is refused. */
export function parseServicePublications(specs: readonly string[]): ServicePublication[] {
  if (specs.length > MAX_SERVICE_PUBLICATIONS) throw new ServicePublishError(`--publish: ${specs.length} publications; at most ${MAX_SERVICE_PUBLICATIONS} per service`);
  const all = specs.map(parseServicePublication);
  all.forEach((p, i) => {
    if (all.slice(0, i).some((q) => q.published === p.published && q.protocol === p.protocol)) throw new ServicePublishError(`--publish: published port ${p.published}/${p.protocol} is given twice`);
  });
  return all;
}

export function formatServicePublication(p: ServicePublication): string {
  return `${p.published}:${p.target}/${p.protocol}${p.mode === 'host' ? ' (mode=host)' : ''}`;
}
