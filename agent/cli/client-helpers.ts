// Shared by the CLI's command files: reach the agent named by --api-socket or
// WEFT_SOCKET, and check user input before sending it.
import type { Command } from 'commander';
import type { z } from 'zod';
import type { AgentClient } from '../api/client.ts';
import { UsageError } from './usage.ts';

/** The gRPC client is loaded on first use: commands that fail their checks, or never call the agent, do not pay for it. */
export async function clientFor(command: Command): Promise<AgentClient> {
  const { AgentClient } = await import('../api/client.ts');
  return AgentClient.fromEnvironment(command.optsWithGlobals<{ apiSocket?: string }>().apiSocket);
}

export async function withClient<T>(command: Command, use: (c: AgentClient) => Promise<T>): Promise<T> {
  const client = await clientFor(command);
  try {
    return await use(client);
  } finally {
    client.close();
  }
}

export function checked<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const result = schema.safeParse(value);
  if (!result.success) throw new UsageError(`${what}: ${result.error.issues.map((i) => i.message).join('; ')}`);
  return result.data;
}

/** commander collector for repeatable options (--network a --network b). */
export function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}
