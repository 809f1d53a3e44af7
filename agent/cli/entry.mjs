// bin/weft's entry point, plain JavaScript so that it runs before any
// TypeScript is loaded: it turns on Node's compile cache
// (agent/util/compile-cache.mjs), which is most of what makes `weft members`
// answer at once, then loads the CLI.
import { enableWeftCompileCache } from '../util/compile-cache.mjs';

enableWeftCompileCache();
await import('./main.ts');
