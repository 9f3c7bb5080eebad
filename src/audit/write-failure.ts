import { TokenwatchError } from '../errors.js';

/**
 * The error of a write the ledger could not commit (a batch, an aside statement, a lost writer
 * thread). `sqliteCode` (SQLITE_FULL, SQLITE_IOERR, ...) is kept in `details`: the degraded
 * reason states it, as it does for an error raised on the event loop's own connection.
 */
export function writeFailure(message: string, sqliteCode?: string): TokenwatchError {
  return new TokenwatchError(
    'ERR_AUDIT_WRITE',
    message,
    sqliteCode === undefined ? {} : { details: { sqliteCode } },
  );
}

/** `CODE: message` for a failed write: the SQLite code when there is one, else the error's code. */
export function describeWriteError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const sqlite = err instanceof TokenwatchError ? err.details?.['sqliteCode'] : undefined;
  const code = typeof sqlite === 'string' ? sqlite : (err as { code?: string }).code;
  return `${code ?? err.name}: ${err.message}`;
}
