// Exit codes are part of the CLI contract: 0 ok, 1 failed, 2 bad usage.
export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;

/** Thrown for input the user must correct; printed as-is and exits 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}
