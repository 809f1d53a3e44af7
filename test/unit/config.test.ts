import test from 'ava';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveConfig, configFromEnv, configFromFile, validatePartial, ConfigError } from '../../agent/config.ts';

test('defaults are valid on their own', (t) => {
  const config = resolveConfig();
  t.is(config.listenAddr, '0.0.0.0:2377');
  t.is(config.gossipPort, 7946);
});

test('flags override environment, which overrides the file', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'weft-config-'));
  const file = join(dir, 'weft.json');
  writeFileSync(file, JSON.stringify({ name: 'from-file', gossipPort: 1000, logLevel: 'debug' }));
  const config = resolveConfig(configFromFile(file), configFromEnv({ WEFT_GOSSIP_PORT: '2000', WEFT_NODE_NAME: 'from-env' }), { name: 'from-flag' });
  t.is(config.name, 'from-flag');
  t.is(config.gossipPort, 2000);
  t.is(config.logLevel, 'debug');
});

for (const [field, value, message] of [
  ['advertiseAddr', '300.1.1.1', /advertiseAddr: must be an IPv4 address/],
  ['listenAddr', '0.0.0.0', /listenAddr: must be IP:PORT/],
  ['listenAddr', '0.0.0.0:70000', /listenAddr: must be IP:PORT with a valid IPv4 address and a port/],
  ['gossipPort', 0, /gossipPort/],
  ['dataDir', 'relative/dir', /dataDir: must be an absolute path/],
  ['logLevel', 'loud', /logLevel/],
  ['name', '-bad name', /name: must be 1-63 letters, digits/],
] as const) {
  test(`a bad ${field} (${String(value)}) is named in the error`, (t) => {
    const error = t.throws(() => validatePartial({ [field]: value }, 'command-line flags'), { instanceOf: ConfigError });
    t.regex(error!.message, /invalid command-line flags/);
    t.regex(error!.message, message);
  });
}

test('unknown fields in a config file are refused, naming the file', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'weft-config-'));
  const file = join(dir, 'weft.json');
  writeFileSync(file, JSON.stringify({ dataDirectory: '/x' }));
  const error = t.throws(() => configFromFile(file), { instanceOf: ConfigError });
  t.regex(error!.message, new RegExp(`config file ${file}`));
  t.regex(error!.message, /dataDirectory/);
});

test('a config file that is not JSON says so', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'weft-config-'));
  const file = join(dir, 'weft.json');
  writeFileSync(file, 'dataDir = /x');
  t.throws(() => configFromFile(file), { instanceOf: ConfigError, message: /is not valid JSON/ });
});

test('a bad environment variable is reported by its name, as coming from the environment', (t) => {
  t.throws(() => configFromEnv({ WEFT_ADVERTISE_ADDR: 'nope' }), { instanceOf: ConfigError, message: /invalid environment[\s\S]*WEFT_ADVERTISE_ADDR: must be an IPv4/ });
});
