import { describe, expect, it } from 'vitest';
import { TokenwatchError } from '../../src/errors.js';
import { describeWriteError, writeFailure } from '../../src/audit/write-failure.js';

describe('writeFailure', () => {
  it('is a TokenwatchError ERR_AUDIT_WRITE from the catalogue, keeping the SQLite code', () => {
    const err = writeFailure('database or disk is full', 'SQLITE_FULL');
    expect(err).toBeInstanceOf(TokenwatchError);
    expect(err).toMatchObject({ code: 'ERR_AUDIT_WRITE', status: 500 });
    expect(err.details).toEqual({ sqliteCode: 'SQLITE_FULL' });
    expect(writeFailure('writer thread exited with code 1').details).toBeUndefined();
  });

  it('describes a failed write by its SQLite code when it has one, else by its own code', () => {
    expect(describeWriteError(writeFailure('database or disk is full', 'SQLITE_FULL'))).toBe(
      'SQLITE_FULL: database or disk is full',
    );
    expect(describeWriteError(writeFailure('writer thread exited with code 1'))).toBe(
      'ERR_AUDIT_WRITE: writer thread exited with code 1',
    );
    // An error raised on the event loop's own connection (better-sqlite3's SqliteError).
    const inline = Object.assign(new Error('disk I/O error'), { code: 'SQLITE_IOERR' });
    expect(describeWriteError(inline)).toBe('SQLITE_IOERR: disk I/O error');
    expect(describeWriteError(new RangeError('bad'))).toBe('RangeError: bad');
    expect(describeWriteError('gone')).toBe('gone');
  });
});
