// The lab's namespace name prefix: checked before anything is created, and
// cheap to import for the CLI's argument checks.
export const DEFAULT_PREFIX = 'weftlab';

export function validatePrefix(prefix: string): string {
  if (!/^[a-z][a-z0-9]{0,11}$/.test(prefix)) {
    throw new Error(`lab prefix "${prefix}" must be 1-12 lower-case letters or digits, starting with a letter`);
  }
  return prefix;
}
