// Preloaded with `node --import` by the CLI tests: records the URL of every
// module the process loads and writes the list to $WEFT_MODULE_TRACE at exit,
// so a test can check what a command pulled in.
import { registerHooks } from 'node:module';
import { writeFileSync } from 'node:fs';

const loaded = new Set();
registerHooks({
  load(url, context, nextLoad) {
    loaded.add(url);
    return nextLoad(url, context);
  },
});
process.on('exit', () => {
  const target = process.env.WEFT_MODULE_TRACE;
  if (target) writeFileSync(target, [...loaded].join('\n') + '\n');
});
