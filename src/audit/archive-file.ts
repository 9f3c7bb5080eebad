import { createHash } from 'node:crypto';
import {
  closeSync,
  constants,
  fstatSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { dirname } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';

/**
 * The archive file of sealed ledger segments (docs/ledger-format.md#archive-files): gzip of
 * JSON lines, a header line, then one line per stored record and one per batch seal of the
 * range, every column exactly as stored (blobs as `{"b64": ...}`), so the rows re-hash with the
 * same code as the database scan and the file alone proves its range once the `audit.archived`
 * record that names its SHA-256 is known to be signed.
 */
export const ARCHIVE_FORMAT = 'tokenwatch-archive';
export const ARCHIVE_VERSION = 1;
export const RECORD_COLUMNS = [
  'seq',
  'time',
  'source',
  'type',
  'kind',
  'fingerprint',
  'attrs',
  'leaf',
  'chain',
] as const;
export const SEAL_COLUMNS = ['seq', 'chain', 'time', 'key_id', 'sig'] as const;

/** The first line of an archive file. */
export interface ArchiveHeader {
  format: typeof ARCHIVE_FORMAT;
  version: number;
  ledgerId: string;
  fromSeq: number;
  toSeq: number;
  records: number;
  seals: number;
  /** Chain hash (hex) before fromSeq: the zero hash at seq 1, else the one the range extends. */
  prevChain: string;
  /** Chain hash (hex) at toSeq, which checkpoint `checkpoint` signs. */
  chain: string;
  checkpoint: number;
  recordColumns: readonly string[];
  sealColumns: readonly string[];
}

/** A stored value: what SQLite returned for one column. */
export type StoredValue = number | string | null | Uint8Array;

/** One row of the file, values in the order of its header's column list. */
export type ArchivedRow = StoredValue[];

/** An archive file as read back. */
export interface ArchiveContent {
  header: ArchiveHeader;
  records: ArchivedRow[];
  seals: ArchivedRow[];
}

/** What writing produced: the file's size and SHA-256 (hex) of its bytes. */
export interface WrittenArchive {
  bytes: number;
  sha256: string;
}

/** Lines per gzip member: members are independent, so memory stays bounded by one. */
const LINES_PER_MEMBER = 4096;

function encodeValue(v: unknown): unknown {
  if (v instanceof Uint8Array) return { b64: Buffer.from(v).toString('base64') };
  if (typeof v === 'bigint') return Number(v);
  return v;
}

function decodeValue(v: unknown): StoredValue {
  if (v === null || typeof v === 'number' || typeof v === 'string') return v;
  if (typeof v === 'object' && typeof (v as { b64?: unknown }).b64 === 'string') {
    return Buffer.from((v as { b64: string }).b64, 'base64');
  }
  throw new RangeError(`unexpected value ${JSON.stringify(v)}`);
}

/**
 * Writes the file durably: a temp file beside `path`, fsync, rename over `path` (a stray file
 * from a failed pass is simply replaced), fsync of the directory so the rename survives a power
 * loss. Rows are consumed page by page; each page becomes one gzip member (RFC 1952 §2.2: a
 * gzip file is a series of members; gunzip reads them as one stream).
 */
export function writeArchive(
  path: string,
  header: ArchiveHeader,
  records: Iterable<readonly unknown[][]>,
  seals: Iterable<readonly unknown[][]>,
): WrittenArchive {
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true });
  const tmp = `${path}.tmp-${process.pid}`;
  // The temp name is predictable and the directory is writable by whoever attacks the archive:
  // remove what is there (a symlink itself, never its target), then create the file exclusively
  // without following links, so a planted symlink cannot redirect this write (CWE-59).
  rmSync(tmp, { force: true });
  const fd = openSync(
    tmp,
    constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
    0o640,
  );
  const sha = createHash('sha256');
  let bytes = 0;
  let done = false;
  const emit = (lines: string[]): void => {
    if (lines.length === 0) return;
    const gz = gzipSync(`${lines.join('\n')}\n`);
    sha.update(gz);
    bytes += gz.length;
    let off = 0;
    while (off < gz.length) off += writeSync(fd, gz, off);
  };
  try {
    let lines = [JSON.stringify(header)];
    for (const source of [records, seals]) {
      for (const page of source) {
        for (const row of page) {
          lines.push(JSON.stringify(row.map(encodeValue)));
          if (lines.length >= LINES_PER_MEMBER) {
            emit(lines);
            lines = [];
          }
        }
      }
    }
    emit(lines);
    fsyncSync(fd);
    done = true;
  } finally {
    closeSync(fd);
    if (!done) rmSync(tmp, { force: true });
  }
  renameSync(tmp, path);
  const dfd = openSync(dir, 'r');
  try {
    fsyncSync(dfd);
  } finally {
    closeSync(dfd);
  }
  return { bytes, sha256: sha.digest('hex') };
}

/** SHA-256 (hex) and size of a file's bytes. */
export function hashFile(path: string): WrittenArchive & { data: Buffer } {
  const data = readFileSync(path);
  return { data, bytes: data.length, sha256: createHash('sha256').update(data).digest('hex') };
}

/**
 * Reads an archive file that a signed record says is `bytes` long, as `hashFile` does, but
 * refuses before reading anything that is not a regular file of a plausible size: whoever
 * writes the archive directory can put a FIFO (a read that never returns), a device
 * (/dev/zero: endless), a directory or a multi-GiB sparse file in its place. O_NONBLOCK keeps
 * the open of a FIFO from waiting for a writer, and the checks use the open descriptor.
 * Returns a sentence naming what is wrong instead of throwing.
 */
export function readArchiveFile(
  path: string,
  bytes: number,
): (WrittenArchive & { data: Buffer }) | { problem: string } {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    return { problem: `cannot be opened (${(err as NodeJS.ErrnoException).code ?? 'error'})` };
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) return { problem: 'is not a regular file' };
    // An edited file of about the signed size is hashed, so the SHA-256 mismatch is what is
    // reported; one far larger is refused unread (memory stays bounded).
    const limit = Math.max(4 * bytes, 64 * 1024 * 1024);
    if (st.size > limit)
      return { problem: `is ${st.size} bytes, far more than the signed ${bytes}` };
    const data = readFileSync(fd);
    return { data, bytes: data.length, sha256: createHash('sha256').update(data).digest('hex') };
  } catch (err) {
    return { problem: `cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})` };
  } finally {
    closeSync(fd);
  }
}

/**
 * Parses an archive file's (gzip) bytes. Throws a RangeError naming what is wrong: not gzip,
 * not this format, a line that does not parse, or counts that differ from the header's.
 */
export function parseArchive(data: Buffer): ArchiveContent {
  let text: string;
  try {
    text = gunzipSync(data).toString('utf8');
  } catch (err) {
    throw new RangeError(`not a readable gzip file (${(err as Error).message})`);
  }
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  const header = parseLine(lines[0] ?? '', 1) as ArchiveHeader;
  if (
    typeof header !== 'object' ||
    header === null ||
    header.format !== ARCHIVE_FORMAT ||
    header.version !== ARCHIVE_VERSION
  ) {
    throw new RangeError(`not a ${ARCHIVE_FORMAT} v${ARCHIVE_VERSION} file`);
  }
  if (
    JSON.stringify(header.recordColumns) !== JSON.stringify(RECORD_COLUMNS) ||
    JSON.stringify(header.sealColumns) !== JSON.stringify(SEAL_COLUMNS)
  ) {
    throw new RangeError('unexpected column lists in the header');
  }
  if (lines.length !== 1 + header.records + header.seals) {
    throw new RangeError(
      `${lines.length - 1} rows, the header announces ${header.records} records and ${header.seals} seals`,
    );
  }
  const rows = (from: number, count: number, width: number): ArchivedRow[] => {
    const out: ArchivedRow[] = [];
    for (let i = from; i < from + count; i++) {
      const v = parseLine(lines[i] ?? '', i + 1);
      if (!Array.isArray(v) || v.length !== width)
        throw new RangeError(`line ${i + 1}: not a row of ${width} columns`);
      out.push(
        v.map((x, c) => {
          try {
            return decodeValue(x);
          } catch (err) {
            throw new RangeError(`line ${i + 1} column ${c + 1}: ${(err as Error).message}`);
          }
        }),
      );
    }
    return out;
  };
  return {
    header,
    records: rows(1, header.records, RECORD_COLUMNS.length),
    seals: rows(1 + header.records, header.seals, SEAL_COLUMNS.length),
  };
}

function parseLine(line: string, n: number): unknown {
  try {
    return JSON.parse(line) as unknown;
  } catch {
    throw new RangeError(`line ${n} is not JSON`);
  }
}
