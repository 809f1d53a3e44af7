// A UDP client that keeps one flow: it sends from one source port every 200 ms
// (as DNS, syslog or statsd clients do) and records each reply, or "-" when
// none came in time. Used to see a flow move off a backend that left.
import { execa } from 'execa';

export interface FixedPortUdpClient {
  /** Each reply's text (the backend's name), or "-" for a query without one. */
  answers: string[];
  stop: () => Promise<void>;
}

export interface UdpClientOptions {
  /** The one port every query leaves from. */
  sourcePort?: number;
  /** Between queries, and how long one waits for its reply. */
  intervalMs?: number;
  /** Record "-" for a query without a reply (false: record replies only). */
  markSilence?: boolean;
}

export function fixedPortUdpClient(netns: string, ip: string, port: number, options: UdpClientOptions = {}): FixedPortUdpClient {
  const { sourcePort = 40053, intervalMs = 200, markSilence = true } = options;
  const seconds = intervalMs / 1000;
  const script = [
    'import socket, time',
    's = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)',
    `s.bind(("0.0.0.0", ${sourcePort}))`,
    `s.settimeout(${seconds})`,
    'while True:',
    `    s.sendto(b"q", ("${ip}", ${port}))`,
    '    try:',
    '        print(s.recv(100).decode().strip(), flush=True)',
    '    except OSError:',
    `        ${markSilence ? 'print("-", flush=True)' : 'pass'}`,
    `    time.sleep(${seconds})`,
  ].join('\n');
  const child = execa('ip', ['netns', 'exec', netns, '/usr/bin/python3', '-c', script], { reject: false, buffer: false, stdin: 'ignore' });
  const answers: string[] = [];
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => answers.push(...chunk.split('\n').filter(Boolean)));
  return { answers, stop: async () => { child.kill('SIGKILL'); await child; } };
}
