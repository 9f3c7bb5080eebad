import { TokenwatchError } from '../errors.js';

/** Throws the typed usage error (exit code 2). */
export function usage(message: string): never {
  throw new TokenwatchError('ERR_USAGE', message);
}

/** Parses an ISO 8601 flag value to unix ms. */
export function parseIso(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const t = Date.parse(value);
  if (Number.isNaN(t)) usage(`${flag} must be an ISO 8601 time, got "${value}"`);
  return t;
}

/** A CLI subcommand: resolves to the exit code, or -1 to keep the process running. */
export type Command = (args: string[]) => Promise<number>;
