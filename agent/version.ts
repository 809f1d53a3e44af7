// The version weft reports (`weft --version`, the Status API). Read from
// package.json so there is one place to bump it, and kept apart from the
// daemon so the CLI can print it without loading the agent.
import pkg from '../package.json' with { type: 'json' };

export const WEFT_VERSION: string = pkg.version;
