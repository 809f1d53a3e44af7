// What `weft run` / `weft attach` ask of the overlay, and what they get back.
import { badRequest } from '../api/errors.ts';
import type { EndpointObject } from '../wire/objects-codec.ts';
import { OBJECT_NAME, OBJECT_NAME_RULE } from '../../lib/names.ts';

export interface SandboxRequest {
  networks: string[];
  name: string;
  aliases: string[];
  /** Adopt this existing namespace (name or path) instead of creating one. */
  netns?: string | undefined;
  /** Run this command in the sandbox, watched by the agent (weft run --detach). */
  command?: string[] | undefined;
  /** Services the sandbox backs; each must be on one of `networks`. */
  services?: string[] | undefined;
}

export interface SandboxInfo {
  id: string;
  netns: string;
  pid: number;
  endpoints: EndpointObject[];
}

/** Checks what does not need cluster state: names and that at least one network is given. */
export function checkSandboxRequest(request: SandboxRequest): void {
  for (const name of [request.name, ...request.aliases].filter((n) => n !== '')) {
    if (!OBJECT_NAME.test(name)) throw badRequest(`name "${name}" must be ${OBJECT_NAME_RULE}`);
  }
  if (request.networks.length === 0) throw badRequest('give at least one --network');
}
