// UsageError: a command-line mistake (unknown option, bad value, missing argument). The CLI prints its message and
// exits with status 2; any other Error is a failure (status 1). Shared by train/cli.ts and the commands it delegates to.
export class UsageError extends Error {
  override name = 'UsageError';
}
