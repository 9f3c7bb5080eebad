/**
 * Where one RESP2/RESP3 value ends, without decoding it (issue #19): what lets the keyspace
 * subscriber cut a socket's bytes into whole frames, read the pub/sub messages itself and hand
 * every other frame, whole, to ioredis' decoder. It allocates nothing.
 *
 * Trusts nothing about the bytes: a length that does not parse, a frame that does not end in
 * CRLF where its length says, a type this scanner does not know (streamed `?` lengths,
 * attributes `|`), or nesting deeper than MAX_DEPTH is UNSUPPORTED, and the caller gives the
 * connection back to ioredis, whose decoder then reports the protocol error as it always did.
 */

/** Not enough bytes yet; `needed` says how many at least. */
export const INCOMPLETE = -1;
/** Not a frame this scanner vouches for. */
export const UNSUPPORTED = -2;

const CR = 13;
const LF = 10;
export const MAX_DEPTH = 64;
/** A length with more digits than this is not a length Redis sends (2^53 has 16). */
const MAX_DIGITS = 15;

export class RespScanner {
  /** After INCOMPLETE: the buffer must be at least this long before another scan can progress. */
  needed = 0;

  /** End (exclusive) of the value starting at `pos`, or INCOMPLETE, or UNSUPPORTED. */
  valueEnd(buf: Buffer, pos: number, depth = 0): number {
    if (pos >= buf.length) return this.#short(buf, pos + 1);
    const type = buf[pos];
    switch (type) {
      case 0x2b: // + simple string
      case 0x2d: // - simple error
      case 0x3a: // : integer
      case 0x5f: // _ null
      case 0x23: // # boolean
      case 0x2c: // , double
      case 0x28: // ( big number
        return this.#lineEnd(buf, pos + 1);
      case 0x24: // $ blob string
      case 0x21: // ! blob error
      case 0x3d: {
        // = verbatim string
        const len = this.#length(buf, pos + 1);
        if (len === LEN_NULL) return type === 0x24 ? this.#afterLine : UNSUPPORTED; // $-1 (RESP2 null)
        return len < 0 ? len : this.#bodyEnd(buf, len);
      }
      case 0x2a: // * array
      case 0x7e: // ~ set
      case 0x3e: // > push
      case 0x25: {
        // % map
        if (depth >= MAX_DEPTH) return UNSUPPORTED;
        const n = this.#length(buf, pos + 1);
        let at = this.#afterLine;
        if (n === LEN_NULL) return type === 0x2a ? at : UNSUPPORTED; // *-1 (RESP2 null)
        if (n < 0) return n;
        const items = type === 0x25 ? n * 2 : n;
        for (let i = 0; i < items; i++) {
          at = this.valueEnd(buf, at, depth + 1);
          if (at < 0) return at;
        }
        return at;
      }
      default:
        return UNSUPPORTED;
    }
  }

  /** Set by blobEnd: where the blob's bytes start. */
  blobStart = 0;

  /** End of the `$` blob string at `pos` (not null), its bytes from `blobStart` to end - 2. */
  blobEnd(buf: Buffer, pos: number): number {
    if (pos >= buf.length) return this.#short(buf, pos + 1);
    if (buf[pos] !== 0x24) return UNSUPPORTED;
    const len = this.#length(buf, pos + 1);
    if (len === LEN_NULL) return UNSUPPORTED;
    if (len < 0) return len;
    this.blobStart = this.#afterLine; // read by the caller only when the blob is whole
    return this.#bodyEnd(buf, len);
  }

  /** Set by #length: where the bytes after its CRLF start. */
  #afterLine = 0;

  /** End of a `len`-byte body that starts at #afterLine, with the CRLF after it. */
  #bodyEnd(buf: Buffer, len: number): number {
    const end = this.#afterLine + len + 2;
    if (end > buf.length) return this.#short(buf, end);
    return buf[end - 2] === CR && buf[end - 1] === LF ? end : UNSUPPORTED;
  }

  #short(buf: Buffer, needed: number): number {
    this.needed = Math.max(needed, buf.length + 1);
    return INCOMPLETE;
  }

  #lineEnd(buf: Buffer, from: number): number {
    const cr = buf.indexOf(CR, from);
    if (cr < 0 || cr + 1 >= buf.length) return this.#short(buf, buf.length + 1);
    return buf[cr + 1] === LF ? cr + 2 : UNSUPPORTED;
  }

  /**
   * A decimal length up to CRLF; sets #afterLine. `-1` is LEN_NULL; otherwise INCOMPLETE or
   * UNSUPPORTED when it cannot be read (yet).
   */
  #length(buf: Buffer, from: number): number {
    let at = from;
    let negative = false;
    if (at < buf.length && buf[at] === 0x2d) {
      negative = true;
      at++;
    }
    let n = 0;
    const start = at;
    while (at < buf.length) {
      const c = buf[at]!;
      if (c === CR) break;
      if (c < 0x30 || c > 0x39 || at - start >= MAX_DIGITS) return UNSUPPORTED;
      n = n * 10 + (c - 0x30);
      at++;
    }
    if (at + 1 >= buf.length) return this.#short(buf, buf.length + 1);
    if (at === start || buf[at + 1] !== LF) return UNSUPPORTED;
    this.#afterLine = at + 2;
    if (negative) return n === 1 ? LEN_NULL : UNSUPPORTED;
    return n;
  }
}

/** #length's `-1`: a RESP2 null bulk string or array. */
const LEN_NULL = -3;
