// Defaults the CLI and the agent share. A module of constants only, so the
// CLI can use them without loading the agent's schemas (zod).
export const DEFAULT_API_SOCKET = '/run/weft/weft.sock';
export const DEFAULT_ADDR_POOL = '100.64.0.0/10';
export const DEFAULT_ADMISSION_PORT = 2377; // the port `weft join ADDR` assumes, as Swarm's
