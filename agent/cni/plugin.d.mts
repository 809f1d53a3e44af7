// Types of plugin.mjs (plain JavaScript so that the plugin loads no TypeScript), for the tests.
export declare const SUPPORTED_VERSIONS: readonly string[];
export declare const COMMANDS: readonly string[];
export declare const DEFAULT_API_SOCKET: string;
export declare const MAX_LINE_BYTES: number;
export declare const MAX_ENV_VALUE_BYTES: number;
export declare const STATUS: Readonly<Record<'ok' | 'invalidArgument' | 'resourceExhausted' | 'unimplemented', number>>;
export declare const CNI_CODE: Readonly<Record<'invalidEnv' | 'io' | 'decode' | 'invalidConfig' | 'tryLater' | 'notAvailable' | 'agentFailed', number>>;
export declare const FORWARDED_ENV: readonly string[];
export declare function callAgent(socketPath: string, method: string, request: object): Promise<unknown>;
export declare function runPlugin(env: Readonly<Record<string, string | undefined>>, readStdin: () => string): Promise<{ exitCode: number; output: string }>;
