// The CLI's output options and renderers: --format/--json/-q parsing, what
// each format prints, and the join command `weft init` prints.
import test from 'ava';
import { chosenFormat, printInspect, printListing, type FormatFlags } from '../../agent/cli/list-format.ts';
import { joinCommand } from '../../agent/cli/join-command.ts';
import { UsageError } from '../../agent/cli/usage.ts';

/** What `print` wrote to standard output. */
function stdoutOf(print: () => void): string {
  const original = process.stdout.write.bind(process.stdout);
  let out = '';
  process.stdout.write = ((chunk: string | Uint8Array) => {
    out += String(chunk);
    return true;
  }) as typeof process.stdout.write;
  try {
    print();
  } finally {
    process.stdout.write = original;
  }
  return out;
}

test('--format picks the format; --json is --format json; lists default to table, inspect to json', (t) => {
  t.is(chosenFormat({}), 'table');
  t.is(chosenFormat({}, 'json'), 'json');
  t.is(chosenFormat({ format: 'json' }), 'json');
  t.is(chosenFormat({ format: 'table' }, 'json'), 'table');
  t.is(chosenFormat({ json: true }), 'json');
  t.is(chosenFormat({ json: true, format: 'json' }), 'json');
  t.is(chosenFormat({ quiet: true }), 'table');
});

for (const [flags, message] of [
  [{ format: 'yaml' }, /^--format must be table or json, got "yaml"$/],
  [{ format: 'JSON' }, /--format must be table or json/],
  [{ format: '' }, /--format must be table or json, got ""/],
  [{ json: true, format: 'table' }, /--json and --format table contradict/],
  [{ quiet: true, json: true }, /-q\/--quiet .* --json/],
  [{ quiet: true, format: 'json' }, /-q\/--quiet .* --format/],
] as Array<[FormatFlags, RegExp]>) {
  test(`bad output flags ${JSON.stringify(flags)} are a usage error naming the flag`, (t) => {
    t.throws(() => chosenFormat(flags), { instanceOf: UsageError, message });
  });
}

const listing = {
  items: [{ id: 'aaaa1111', name: 'web' }, { id: 'bbbb2222', name: 'db' }],
  id: (i: { id: string }) => i.id,
  json: (i: { id: string; name: string }) => ({ id: i.id, name: i.name }),
  headers: ['ID', 'NAME'],
  row: (i: { id: string; name: string }) => [i.id, i.name],
};

test('-q prints one identifier a line and nothing for an empty list', (t) => {
  t.is(stdoutOf(() => printListing({ quiet: true }, listing)), 'aaaa1111\nbbbb2222\n');
  t.is(stdoutOf(() => printListing({ quiet: true }, { ...listing, items: [] })), '');
});

test('--format json prints the items as a JSON array; table prints aligned columns', (t) => {
  t.deepEqual(JSON.parse(stdoutOf(() => printListing({ format: 'json' }, listing))), [{ id: 'aaaa1111', name: 'web' }, { id: 'bbbb2222', name: 'db' }]);
  t.deepEqual(JSON.parse(stdoutOf(() => printListing({ json: true }, { ...listing, items: [] }))), []);
  t.is(stdoutOf(() => printListing({}, listing)), 'ID        NAME\naaaa1111  web\nbbbb2222  db\n');
});

test('inspect --format table: key/value lines, lists of objects as an indented table', (t) => {
  const value = { name: 'app', vni: 7, internal: false, hosts: ['h1', 'h2'], gateway: '', endpoints: [{ name: 'web', ip: '100.64.0.2' }, { name: 'db', ip: '100.64.0.3', aliases: ['x', 'y'] }] };
  t.is(
    stdoutOf(() => printInspect({ format: 'table' }, value, 'json')),
    ['name       app', 'vni        7', 'internal   false', 'hosts      h1,h2', 'gateway    -', 'endpoints:', '  NAME  IP          ALIASES', '  web   100.64.0.2  -', '  db    100.64.0.3  x,y', ''].join('\n'),
  );
  t.deepEqual(JSON.parse(stdoutOf(() => printInspect({}, value, 'json'))), value);
});

test('the join command names the advertised address, and the port only when it is not 2377', (t) => {
  const token = 'WEFT-1-AAAA-BBBB';
  t.is(joinCommand(token, { advertiseAddr: '198.18.0.1', listenAddr: '0.0.0.0:2377' }), `weft join --token ${token} 198.18.0.1`);
  t.is(joinCommand(token, { advertiseAddr: '198.18.0.1', listenAddr: '0.0.0.0:2400' }), `weft join --token ${token} 198.18.0.1:2400`);
});
