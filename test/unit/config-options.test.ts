// One table (agent/config-options.ts) defines every agent option's flag,
// variable and help; the flags, the environment and the file all land on the
// same field, checked by the same schema.
import test from 'ava';
import { Command } from 'commander';
import { CONFIG_FIELDS, flagName, optionOf } from '../../agent/config-options.ts';
import { configFromEnv, configFromFlags, resolveConfig, ConfigError, type AgentFlags } from '../../agent/config.ts';
import { registerAgentCommand } from '../../agent/cli/agent-command.ts';

function agentCommand(): Command {
  const program = new Command();
  registerAgentCommand(program);
  return program.commands.find((c) => c.name() === 'agent')!;
}

test('every option with a flag is a flag of `weft agent`, with its help', (t) => {
  const registered = new Map(agentCommand().options.map((o) => [o.long, o.description]));
  for (const field of CONFIG_FIELDS) {
    const flag = flagName(field);
    if (flag === undefined) continue;
    t.is(registered.get(flag), optionOf(field).help, flag);
  }
  t.true(registered.has('--config'));
});

test('flags as commander parses them become the same config as the environment', (t) => {
  const command = agentCommand();
  command.exitOverride();
  let parsed: AgentFlags = {};
  command.action((flags: AgentFlags) => { parsed = flags; });
  command.parse(['--gossip-port', '7000', '--dns-upstream', '192.0.2.53', '--dns-upstream', '192.0.2.54:5353', '--docker-plugin-dir', '', '--name', 'h9'], { from: 'user' });
  const fromFlags = resolveConfig(configFromFlags(parsed));
  const fromEnv = resolveConfig(configFromEnv({ WEFT_GOSSIP_PORT: '7000', WEFT_DNS_UPSTREAMS: '192.0.2.53, 192.0.2.54:5353', WEFT_DOCKER_PLUGIN_DIR: '', WEFT_NODE_NAME: 'h9' }));
  t.is(fromFlags.gossipPort, 7000);
  t.deepEqual(fromFlags.dnsUpstreams, ['192.0.2.53', '192.0.2.54:5353']);
  t.is(fromFlags.dockerPluginDir, '');
  t.is(fromFlags.name, 'h9');
  // The environment skips empty variables: an empty WEFT_DOCKER_PLUGIN_DIR keeps the default.
  t.deepEqual({ ...fromEnv, dockerPluginDir: '' }, fromFlags);
});

test('a bad flag value is named by its flag, a bad variable by its variable', (t) => {
  t.throws(() => configFromFlags({ gossipPort: '99999' }), { instanceOf: ConfigError, message: /--gossip-port/ });
  t.throws(() => configFromFlags({ dnsUpstream: ['not-an-address'] }), { instanceOf: ConfigError, message: /--dns-upstream/ });
  t.throws(() => configFromFlags({ apiSocket: 'relative.sock' }), { instanceOf: ConfigError, message: /--api-socket: must be an absolute path/ });
  t.throws(() => configFromEnv({ WEFT_DNS_TTL: 'soon' }), { instanceOf: ConfigError, message: /WEFT_DNS_TTL/ });
});
