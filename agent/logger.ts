// pino: JSON lines for machines and log collectors, pretty output when a
// person is watching a terminal.
import { pino, type Logger } from 'pino';

export function createLogger(level: string, name = 'weft'): Logger {
  if (process.stdout.isTTY) {
    return pino({ level, name, transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'HH:MM:ss.l' } } });
  }
  return pino({ level, name });
}
