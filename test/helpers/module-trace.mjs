// Preloaded with `node --import` by the CLI tests: records the URL of every
// module the process loads and writes the list to $WEFT_MODULE_TRACE at exit,
// so a test can check what a command pulled in. A builtin that an ES module
// imports is also recorded as "esm-builtin <builtin> <importer URL>": such an
// import costs a module facade that process.getBuiltinModule avoids
// (docs/cli.md, "Startup").
import { registerHooks } from 'node:module';
import { writeFileSync } from 'node:fs';

const loaded = new Set();
registerHooks({
  resolve(specifier, context, nextResolve) {
    const resolved = nextResolve(specifier, context);
    const fromEsm = context.conditions?.includes('import') ?? false;
    if (fromEsm && resolved.url.startsWith('node:') && context.parentURL) loaded.add(`esm-builtin ${resolved.url} ${context.parentURL}`);
    return resolved;
  },
  load(url, context, nextLoad) {
    loaded.add(url);
    return nextLoad(url, context);
  },
});
process.on('exit', () => {
  const target = process.env.WEFT_MODULE_TRACE;
  if (target) writeFileSync(target, [...loaded].join('\n') + '\n');
});
