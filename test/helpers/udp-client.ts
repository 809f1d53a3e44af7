// A UDP client that keeps one flow: it sends from one source port every 200 ms
// (as DNS, syslog or statsd clients do) and records each reply, or "-" when
// none came within 200 ms. Used to see a flow move off a backend that left.
import { execa } from 'execa';

export interface FixedPortUdpClient {
  /** Each reply's text (the backend's name), or "-" for a query without one. */
  answers: string[];
  stop: () => Promise<void>;
}

export function fixedPortUdpClient(netns: string, ip: string, port: number, sourcePort = 40053): FixedPortUdpClient {
  const script = [
    'import socket, time',
    's = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)',
    `s.bind(("0.0.0.0", ${sourcePort}))`,
    's.settimeout(0.2)',
    'while True:',
    `    s.sendto(b"q", ("${ip}", ${port}))`,
    '    try:',
    '        print(s.recv(100).decode().strip(), flush=True)',
    '    except OSError:',
    '        print("-", flush=True)',
    '    time.sleep(0.2)',
  ].join('\n');
  const child = execa('ip', ['netns', 'exec', netns, '/usr/bin/python3', '-c', script], { reject: false, buffer: false, stdin: 'ignore' });
  const answers: string[] = [];
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => answers.push(...chunk.split('\n').filter(Boolean)));
  return { answers, stop: async () => { child.kill('SIGKILL'); await child; } };
}

