/** Bytes of the compact record form (record-codec.ts): a writer, a reader and the blobs' slabs. */

/** A growable byte buffer with unsigned LEB128 varints (the writer reuses one). */
export class ByteWriter {
  buf = Buffer.allocUnsafeSlow(512);
  n = 0;
  room(k: number): void {
    if (this.n + k <= this.buf.length) return;
    const next = Buffer.allocUnsafeSlow(Math.max(this.buf.length * 2, this.n + k));
    this.buf.copy(next, 0, 0, this.n);
    this.buf = next;
  }
  byte(b: number): void {
    this.room(1);
    this.buf[this.n++] = b;
  }
  varint(v: number): void {
    this.room(8);
    while (v >= 0x80) {
      this.buf[this.n++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    this.buf[this.n++] = v;
  }
  text(s: string): void {
    const n = s.length;
    if (n < 0x80) {
      // Short ASCII (node addresses, key names, ...): its bytes are its chars, its length one
      // varint byte. Written here rather than by Buffer#write, whose call costs more than this.
      this.room(n + 1);
      const buf = this.buf;
      let p = this.n + 1;
      for (let i = 0; i < n; i++) {
        const c = s.charCodeAt(i);
        if (c >= 0x80) {
          p = -1;
          break;
        }
        buf[p++] = c;
      }
      if (p >= 0) {
        buf[this.n] = n;
        this.n = p;
        return;
      }
    }
    const len = Buffer.byteLength(s, 'utf8');
    this.varint(len);
    this.room(len);
    this.n += this.buf.write(s, this.n, 'utf8');
  }
}

/** Reads what ByteWriter wrote; throws a RangeError past the end (a damaged row). */
export class ByteReader {
  i = 0;
  readonly b: Buffer;
  constructor(bytes: Uint8Array) {
    this.b = Buffer.isBuffer(bytes)
      ? bytes
      : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  byte(): number {
    if (this.i >= this.b.length) throw new RangeError('compact record ends early');
    return this.b[this.i++] as number;
  }
  varint(): number {
    let v = 0;
    let scale = 1;
    for (;;) {
      const b = this.byte();
      v += (b & 0x7f) * scale;
      if (b < 0x80) return v;
      scale *= 0x80;
      if (scale > 2 ** 56) throw new RangeError('varint too long');
    }
  }
  #slice(len: number, encoding: 'utf8' | 'hex' | 'latin1'): string {
    const end = this.i + len;
    if (end > this.b.length) throw new RangeError('compact record ends early');
    const s = this.b.toString(encoding, this.i, end);
    this.i = end;
    return s;
  }
  text(): string {
    return this.#slice(this.varint(), 'utf8');
  }
  hex(len: number): string {
    return this.#slice(len, 'hex');
  }
  latin1(len: number): string {
    return this.#slice(len, 'latin1');
  }
}

/**
 * Blobs are views into 64 KiB slabs rather than one small Uint8Array each (an allocation per
 * record cost more than the encoding). A batch's views share few ArrayBuffers, which
 * postMessage to the writer thread clones once each.
 */
export class Slab {
  #buf = new Uint8Array(0);
  #at = 0;
  take(src: Buffer, n: number): Uint8Array {
    if (this.#at + n > this.#buf.length) {
      this.#buf = new Uint8Array(Math.max(65_536, n));
      this.#at = 0;
    }
    const view = this.#buf.subarray(this.#at, this.#at + n);
    view.set(src.subarray(0, n));
    this.#at += n;
    return view;
  }
}
