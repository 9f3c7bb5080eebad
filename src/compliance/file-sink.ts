import { createHash, type Hash } from 'node:crypto';
import { open, type FileHandle } from 'node:fs/promises';

const FLUSH_AT = 1 << 20;

/**
 * A write-only file that hashes (SHA-256) and counts what it writes, buffering about 1 MiB at a
 * time: an export of a million rows holds one buffer, never the file.
 */
export class FileSink {
  readonly path: string;
  readonly #fh: FileHandle;
  readonly #hash: Hash = createHash('sha256');
  #parts: string[] = [];
  #pending = 0;
  #bytes = 0;
  #closed = false;

  private constructor(path: string, fh: FileHandle) {
    this.path = path;
    this.#fh = fh;
  }

  /** Creates the file; refuses to overwrite one. */
  static async create(path: string): Promise<FileSink> {
    return new FileSink(path, await open(path, 'wx', 0o644));
  }

  /** Appends `line` and a newline. */
  async line(line: string): Promise<void> {
    if (this.push(line)) await this.flush();
  }

  /** Buffers `line` and a newline; true when the buffer is full and wants `flush()`. */
  push(line: string): boolean {
    this.#parts.push(line, '\n');
    this.#pending += line.length + 1;
    return this.#pending >= FLUSH_AT;
  }

  /** Writes what is buffered. */
  async flush(): Promise<void> {
    await this.#flush();
  }

  /** Flushes, fsyncs and closes; returns the byte count and SHA-256 (hex). Idempotent. */
  async close(): Promise<{ bytes: number; sha256: string }> {
    if (!this.#closed) {
      this.#closed = true;
      try {
        await this.#flush();
        await this.#fh.sync();
      } finally {
        await this.#fh.close();
      }
    }
    return { bytes: this.#bytes, sha256: this.#hash.copy().digest('hex') };
  }

  async #flush(): Promise<void> {
    if (this.#parts.length === 0) return;
    const buf = Buffer.from(this.#parts.join(''), 'utf8');
    this.#parts = [];
    this.#pending = 0;
    this.#hash.update(buf);
    this.#bytes += buf.length;
    let off = 0;
    while (off < buf.length) off += (await this.#fh.write(buf, off)).bytesWritten;
  }
}
