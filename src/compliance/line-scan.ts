import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync } from 'node:fs';

const CHUNK = 256 * 1024;

/** What a scan of a file saw. */
export interface ScanResult {
  bytes: number;
  sha256: string;
  lines: number;
  /** False when the last line had no terminating newline. */
  terminated: boolean;
}

/**
 * Reads a file once, in 256 KiB chunks, hashing every byte (SHA-256) and calling `onLine` with
 * each line (UTF-8, without its `\n`; 1-based number). Never holds more than a chunk plus one
 * line, whatever the file's size.
 */
export function scanLines(path: string, onLine: (text: string, line: number) => void): ScanResult {
  const hash = createHash('sha256');
  const fd = openSync(path, 'r');
  let bytes = 0;
  let line = 0;
  let rest: Buffer = Buffer.alloc(0);
  try {
    const buf = Buffer.alloc(CHUNK);
    for (;;) {
      const n = readSync(fd, buf, 0, CHUNK, null);
      if (n === 0) break;
      const chunk = buf.subarray(0, n);
      hash.update(chunk);
      bytes += n;
      let data = rest.length > 0 ? Buffer.concat([rest, chunk]) : chunk;
      let nl: number;
      while ((nl = data.indexOf(10)) !== -1) {
        onLine(data.toString('utf8', 0, nl), ++line);
        data = data.subarray(nl + 1);
      }
      rest = Buffer.from(data);
    }
    const terminated = rest.length === 0;
    if (!terminated) onLine(rest.toString('utf8'), ++line);
    return { bytes, sha256: hash.digest('hex'), lines: line, terminated };
  } finally {
    closeSync(fd);
  }
}

/**
 * Joins physical lines into CSV records: a record continues while it holds an odd number of
 * quote characters (a quoted cell with a line break in it; RFC 4180 §2.6).
 */
export function csvRecords(
  onRecord: (text: string, line: number) => void,
): (text: string, line: number) => void {
  let pending: string | undefined;
  let startLine = 0;
  let quotes = 0;
  return (text, line) => {
    if (pending === undefined) {
      pending = text;
      startLine = line;
    } else {
      pending += `\n${text}`;
    }
    for (let i = text.indexOf('"'); i !== -1; i = text.indexOf('"', i + 1)) quotes += 1;
    if (quotes % 2 === 0) {
      const done = pending;
      pending = undefined;
      quotes = 0;
      onRecord(done, startLine);
    }
  };
}
