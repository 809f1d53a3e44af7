// bin/weft-cni's entry point, plain JavaScript so that it runs before any
// TypeScript is loaded: the plugin runs once per container start, so the
// compile cache (agent/util/compile-cache.mjs) spares it stripping and
// parsing its modules every time.
import { enableWeftCompileCache } from '../util/compile-cache.mjs';

enableWeftCompileCache();
const { runCni, readStdin } = await import('./main.ts');
process.exitCode = await runCni(process.env, readStdin, (text) => process.stdout.write(`${text}\n`));
