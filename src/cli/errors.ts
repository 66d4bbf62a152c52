// The CLI's exit codes and the one error type commands throw to end with one of them.
// A CliError's message is printed as is (one or two sentences a developer can act on);
// anything else that escapes a command is a bug and is reported as such.

export const EXIT = {
  ok: 0,
  /** The operation failed; its description is printed. */
  failed: 1,
  /** The command line is wrong (unknown flag, missing argument, bad -p). */
  usage: 2,
  /** The wait ended at --timeout while the operation is still running. */
  timedOut: 3,
  /** The broker or cluster cannot be reached, or refused the credentials. */
  unreachable: 4,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

export class CliError extends Error {
  readonly exitCode: ExitCode;
  constructor(exitCode: ExitCode, message: string) {
    super(message);
    this.name = 'CliError';
    this.exitCode = exitCode;
  }
}

export const usageError = (message: string) => new CliError(EXIT.usage, message);
