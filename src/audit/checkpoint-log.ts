import {
  closeSync,
  existsSync,
  fstatSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readSync,
  writeSync,
} from 'node:fs';
import { dirname } from 'node:path';
import { TokenwatchError } from '../errors.js';
import { checkpointLine, parseCheckpoint, type Checkpoint } from './checkpoint.js';

/** A line of the log that is not a checkpoint (a torn write after a crash, or damage). */
export interface LogLineProblem {
  line: number;
  message: string;
}

const CHUNK = 64 * 1024;

/**
 * Lines of a file, read in 64 KiB chunks (a year of checkpoints is ~100 MB: never one string).
 * The last line is yielded even without its newline, flagged `complete: false`.
 */
export function* readLines(path: string): Generator<{ text: string; complete: boolean }> {
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(CHUNK);
    let rest = Buffer.alloc(0);
    for (;;) {
      const n = readSync(fd, buf, 0, CHUNK, null);
      if (n === 0) break;
      let data = rest.length > 0 ? Buffer.concat([rest, buf.subarray(0, n)]) : buf.subarray(0, n);
      let nl: number;
      while ((nl = data.indexOf(10)) !== -1) {
        yield { text: data.toString('utf8', 0, nl), complete: true };
        data = data.subarray(nl + 1);
      }
      rest = Buffer.from(data);
    }
    if (rest.length > 0) yield { text: rest.toString('utf8'), complete: false };
  } finally {
    closeSync(fd);
  }
}

/** Every checkpoint in a log file, in file order, plus the lines that are not checkpoints. */
export function readCheckpointLog(path: string): {
  entries: Checkpoint[];
  problems: LogLineProblem[];
} {
  if (!existsSync(path)) {
    throw new TokenwatchError('ERR_CHECKPOINT_LOG', `checkpoint log ${path} does not exist`);
  }
  const entries: Checkpoint[] = [];
  const problems: LogLineProblem[] = [];
  let line = 0;
  for (const { text, complete } of readLines(path)) {
    line += 1;
    if (text.trim() === '') continue;
    let parsed: Checkpoint | string;
    try {
      parsed = parseCheckpoint(JSON.parse(text));
    } catch {
      parsed = complete ? 'not JSON' : 'torn last line (crash while appending?)';
    }
    if (typeof parsed === 'string') problems.push({ line, message: parsed });
    else entries.push(parsed);
  }
  return { entries, problems };
}

/** The last complete checkpoint line of a log, read backwards from the end. */
function lastEntry(fd: number, size: number): Checkpoint | undefined {
  let end = size;
  let tail = Buffer.alloc(0);
  while (end > 0) {
    const start = Math.max(0, end - CHUNK);
    const buf = Buffer.alloc(end - start);
    readSync(fd, buf, 0, buf.length, start);
    tail = Buffer.concat([buf, tail]);
    end = start;
    const lines = tail.toString('utf8').split('\n');
    // lines[0] may be cut by the chunk boundary unless we reached the start of the file.
    for (let i = lines.length - 1; i >= (end === 0 ? 0 : 1); i--) {
      const text = lines[i] ?? '';
      if (i === lines.length - 1 || text.trim() === '') continue; // no newline yet, or blank
      try {
        const parsed = parseCheckpoint(JSON.parse(text));
        if (typeof parsed !== 'string') return parsed;
      } catch {
        // not a checkpoint line: keep looking further back
      }
    }
  }
  return undefined;
}

/**
 * The last complete checkpoint line of a log file, read backwards from its end (start-up reads
 * only this, never the whole log); undefined when the file is absent or holds none.
 */
export function readLastCheckpoint(path: string): Checkpoint | undefined {
  if (!existsSync(path)) return undefined;
  const fd = openSync(path, 'r');
  try {
    // A last line without its newline may be torn: only terminated lines count (an older
    // anchor only means a longer tail to check).
    return lastEntry(fd, fstatSync(fd).size);
  } finally {
    closeSync(fd);
  }
}

/**
 * Appends checkpoints to the external JSON-lines log, fsync'ing after every append: the log is
 * what makes truncating or replacing the database detectable from outside it (a hash chain
 * alone cannot show a cut tail), so a checkpoint counts as published only once it is durable.
 * Meant for write-once / append-only storage: the writer never rewrites or truncates the file.
 */
export class CheckpointLogWriter {
  readonly path: string;
  readonly #fd: number;
  /** The last checkpoint already in the file when it was opened. */
  readonly last: Checkpoint | undefined;
  #closed = false;

  constructor(path: string) {
    this.path = path;
    const created = !existsSync(path);
    try {
      mkdirSync(dirname(path), { recursive: true });
      this.#fd = openSync(path, 'a+', 0o644);
      const size = fstatSync(this.#fd).size;
      this.last = lastEntry(this.#fd, size);
      if (size > 0) {
        const end = Buffer.alloc(1);
        readSync(this.#fd, end, 0, 1, size - 1);
        // A torn last line (crash mid-append): end it so the next line parses on its own.
        if (end[0] !== 10) this.#write('\n');
      }
      if (created) this.#syncDir();
    } catch (err) {
      if (err instanceof TokenwatchError) throw err;
      throw new TokenwatchError('ERR_CHECKPOINT_LOG', `cannot open checkpoint log ${path}`, {
        cause: err,
      });
    }
  }

  /** Appends and fsyncs; throws ERR_CHECKPOINT_LOG when the write or the fsync fails. */
  append(checkpoints: readonly Checkpoint[]): void {
    if (checkpoints.length === 0) return;
    if (this.#closed) throw new TokenwatchError('ERR_CHECKPOINT_LOG', 'checkpoint log is closed');
    try {
      this.#write(checkpoints.map(checkpointLine).join(''));
    } catch (err) {
      throw new TokenwatchError(
        'ERR_CHECKPOINT_LOG',
        `cannot append to checkpoint log ${this.path}: ${(err as Error).message}`,
        { cause: err },
      );
    }
  }

  /** Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    closeSync(this.#fd);
  }

  #write(text: string): void {
    const buf = Buffer.from(text, 'utf8');
    let off = 0;
    while (off < buf.length) off += writeSync(this.#fd, buf, off, buf.length - off);
    fsyncSync(this.#fd);
  }

  /** A new file's directory entry must be durable too, or a crash can lose the whole file. */
  #syncDir(): void {
    let dfd: number | undefined;
    try {
      dfd = openSync(dirname(this.path), 'r');
      fsyncSync(dfd);
    } catch {
      // not supported on every platform / file system; the file's own fsync still happened
    } finally {
      if (dfd !== undefined) closeSync(dfd);
    }
  }
}
