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

/** The required `--from ISO --to ISO` period of `command`, validated (from before to). */
export function parsePeriod(
  values: { from?: string | undefined; to?: string | undefined },
  command: string,
): { from: number; to: number } {
  const from = parseIso(values.from, '--from') ?? usage(`${command} needs --from ISO`);
  const to = parseIso(values.to, '--to') ?? usage(`${command} needs --to ISO`);
  if (!(from < to)) usage('--from must be before --to');
  return { from, to };
}
