// `weft run -p [IP:][HOSTPORT[-END]:]PORT[-END][/tcp|udp]`, as Docker's `-p`
// reads it: what a sandbox port publication asks for. Pure: the CLI and the
// API server both parse the same text, and every error says what to type.
// (a builtin taken with process.getBuiltinModule, not `import`: docs/cli.md, "Startup")
const { isIPv4 } = process.getBuiltinModule('node:net');

export type PublishProtocol = 'tcp' | 'udp';

/** One published port: hostPort 0 asks for a free port chosen by the agent. */
export interface PortPublication {
  /** '0.0.0.0' for every address of the host. */
  hostIp: string;
  hostPort: number;
  port: number;
  protocol: PublishProtocol;
}

/** A sandbox publishes at most this many ports (a range counts each port): they are table entries. */
export const MAX_PUBLISHED_PORTS = 1024;
export const ANY_ADDRESS = '0.0.0.0';

const SPEC = /^(?:(?<ip>\d{1,3}(?:\.\d{1,3}){3}):)?(?:(?<host>\d{0,5}(?:-\d{1,5})?):)?(?<port>\d{1,5}(?:-\d{1,5})?)(?:\/(?<proto>[a-z]+))?$/;
const USAGE = 'write [IP:][HOSTPORT:]PORT[/tcp|udp], e.g. 8080:80, 127.0.0.1:8080:80/tcp, 5353:53/udp, 8000-8002:80-82 or 80 (a free host port)';

export class PublishSpecError extends Error {}

interface Range { first: number; count: number }

function range(text: string, what: string, spec: string): Range {
  const [first, last = first] = text.split('-').map(Number) as [number, number?];
  for (const n of [first, last]) {
    if (!Number.isInteger(n) || n < 1 || n > 65_535) throw new PublishSpecError(`--publish "${spec}": ${what} ${n} is not a port (1-65535)`);
  }
  if (last < first) throw new PublishSpecError(`--publish "${spec}": the ${what} range ${text} runs backwards`);
  return { first, count: last - first + 1 };
}

/** Parses one `-p` value into one publication per port. */
export function parsePublishSpec(spec: string): PortPublication[] {
  const match = SPEC.exec(spec);
  if (!match?.groups) throw new PublishSpecError(`--publish "${spec}" is not a port publication: ${USAGE}`);
  const { ip = ANY_ADDRESS, host = '', port = '', proto = 'tcp' } = match.groups;
  if (!isIPv4(ip)) throw new PublishSpecError(`--publish "${spec}": ${ip} is not an IPv4 address`);
  if (proto !== 'tcp' && proto !== 'udp') throw new PublishSpecError(`--publish "${spec}": the protocol is tcp or udp, not "${proto}"`);
  const target = range(port, 'port', spec);
  const hostRange = host === '' ? undefined : range(host, 'host port', spec);
  if (hostRange && hostRange.count !== target.count) {
    throw new PublishSpecError(`--publish "${spec}": the host range has ${hostRange.count} ports and the sandbox range ${target.count}; give ranges of the same length`);
  }
  if (target.count > MAX_PUBLISHED_PORTS) throw new PublishSpecError(`--publish "${spec}": at most ${MAX_PUBLISHED_PORTS} ports per sandbox`);
  return Array.from({ length: target.count }, (_, i) => ({
    hostIp: ip,
    hostPort: hostRange ? hostRange.first + i : 0,
    port: target.first + i,
    protocol: proto,
  }));
}

/** Parses every `-p` value; refuses duplicates within the request and more than MAX_PUBLISHED_PORTS ports. */
export function parsePublishSpecs(specs: readonly string[]): PortPublication[] {
  const all = specs.flatMap(parsePublishSpec);
  if (all.length > MAX_PUBLISHED_PORTS) throw new PublishSpecError(`--publish: ${all.length} ports asked for; at most ${MAX_PUBLISHED_PORTS} per sandbox`);
  const fixed = all.filter((p) => p.hostPort !== 0);
  fixed.forEach((p, i) => {
    if (fixed.slice(0, i).some((q) => samePublishedSocket(p, q))) throw new PublishSpecError(`--publish: host port ${p.hostPort}/${p.protocol} is given twice`);
  });
  return all;
}

/** Docker's notation, as `weft endpoints` shows it: 0.0.0.0:8080->80/tcp. */
export function formatPublication(p: PortPublication): string {
  return `${p.hostIp}:${p.hostPort}->${p.port}/${p.protocol}`;
}

/** Whether two publications claim the same host socket (the same port and protocol on an overlapping address). */
export function samePublishedSocket(a: Pick<PortPublication, 'hostIp' | 'hostPort' | 'protocol'>, b: Pick<PortPublication, 'hostIp' | 'hostPort' | 'protocol'>): boolean {
  return a.hostPort === b.hostPort && a.protocol === b.protocol && (a.hostIp === b.hostIp || a.hostIp === ANY_ADDRESS || b.hostIp === ANY_ADDRESS);
}
