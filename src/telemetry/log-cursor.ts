import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';

/** Where the OTLP log stream stands: every record up to `seq` reached the collector. */
export interface LogCursor {
  ledgerId: string;
  seq: number;
  /** Chain hash at `seq` (hex), binding the cursor to one ledger's history. */
  chain: string;
}

/** A cursor read back from disk, or why it was not usable. */
export type CursorRead =
  { ok: true; cursor: LogCursor } | { ok: false; reason: 'missing' | 'unreadable' | 'malformed' };

const HEX64 = /^[0-9a-f]{64}$/;

/**
 * Reads the cursor file. It is only a claim: the caller checks it against the ledger (same
 * ledger id, chain hash equal to the ledger's at that seq) before skipping anything.
 */
export function readCursor(path: string): CursorRead {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    return {
      ok: false,
      reason: (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'missing' : 'unreadable',
    };
  }
  try {
    const v = JSON.parse(text) as Record<string, unknown>;
    if (
      v.v === 1 &&
      typeof v.ledgerId === 'string' &&
      Number.isSafeInteger(v.seq) &&
      (v.seq as number) >= 0 &&
      typeof v.chain === 'string' &&
      HEX64.test(v.chain)
    ) {
      return { ok: true, cursor: { ledgerId: v.ledgerId, seq: v.seq as number, chain: v.chain } };
    }
  } catch {
    // fall through
  }
  return { ok: false, reason: 'malformed' };
}

/**
 * Replaces the cursor file atomically and durably: write a temp file, fsync it, rename it over
 * the old one, fsync the directory (rename is atomic on POSIX file systems, but only durable
 * once the directory entry is on disk). A crash leaves the old cursor or the new one, never a
 * torn file; at worst records after the old cursor are exported again (at-least-once).
 */
export function writeCursor(path: string, cursor: LogCursor): void {
  const tmp = `${path}.tmp`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeSync(fd, `${JSON.stringify({ v: 1, ...cursor })}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  const dir = openSync(dirname(path), 'r');
  try {
    fsyncSync(dir);
  } finally {
    closeSync(dir);
  }
}
