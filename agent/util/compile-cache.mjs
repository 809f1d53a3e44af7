// Turns on Node's compile cache for the CLI (bin/weft), which starts often
// and briefly (the CNI plugin is one plain .mjs file and needs none). Node
// strips the types of every .ts file with a WebAssembly compiler that costs
// ~60 ms and ~17 MB to start; with the cache, an unchanged file is neither
// stripped nor reparsed.
// The cache is per user (it holds code that runs as that user; a shared
// directory such as /tmp would let another user plant some), and is keyed
// on each file's contents, so an edited file is compiled afresh.
// NODE_DISABLE_COMPILE_CACHE=1 turns it off. Plain JavaScript: it runs
// before any TypeScript is loaded.
// Builtins come from process.getBuiltinModule: an `import` of one costs
// the CLI a module facade (docs/cli.md, "Startup").
const { enableCompileCache } = process.getBuiltinModule('node:module');
const { homedir } = process.getBuiltinModule('node:os');
const { join } = process.getBuiltinModule('node:path');

function cacheDir() {
  const xdg = process.env.XDG_CACHE_HOME;
  if (xdg && xdg.startsWith('/')) return join(xdg, 'weft', 'node-compile-cache');
  let home = process.env.HOME;
  try {
    home ||= homedir();
  } catch {
    return undefined;
  }
  return home && home !== '/' ? join(home, '.cache', 'weft', 'node-compile-cache') : undefined;
}

export function enableWeftCompileCache() {
  const dir = cacheDir();
  // A cache that cannot be created or written only costs speed, never a failure.
  if (dir) enableCompileCache(dir);
}
