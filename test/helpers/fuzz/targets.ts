// Every fuzz target, by boundary. bench/fuzz.ts runs them all for a million
// inputs or more; test/unit/fuzz.test.ts runs a short slice of each.
import type { FuzzTarget } from './target.ts';
import { wireTargets } from './targets-wire.ts';
import { admissionTargets } from './targets-admission.ts';
import { dnsTargets } from './targets-dns.ts';
import { apiTargets } from './targets-api.ts';
import { configTargets } from './targets-config.ts';

export async function allTargets(): Promise<FuzzTarget[]> {
  return [...(await wireTargets()), ...(await admissionTargets()), ...dnsTargets(), ...(await apiTargets()), ...configTargets()];
}
