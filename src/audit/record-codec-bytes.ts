/** Bytes of the compact record form (record-codec.ts): a writer and a reader. */

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
    const len = Buffer.byteLength(s, 'utf8');
    this.varint(len);
    this.room(len);
    this.n += this.buf.write(s, this.n, 'utf8');
  }
}

/** Reads what ByteWriter wrote; throws a RangeError past the end (a damaged row). */
export class ByteReader {
  i = 0;
  constructor(readonly b: Uint8Array) {}
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
  text(): string {
    const len = this.varint();
    if (this.i + len > this.b.length) throw new RangeError('compact record ends early');
    const s = Buffer.from(this.b.buffer, this.b.byteOffset + this.i, len).toString('utf8');
    this.i += len;
    return s;
  }
  hex(len: number): string {
    if (this.i + len > this.b.length) throw new RangeError('compact record ends early');
    const s = Buffer.from(this.b.buffer, this.b.byteOffset + this.i, len).toString('hex');
    this.i += len;
    return s;
  }
  latin1(len: number): string {
    if (this.i + len > this.b.length) throw new RangeError('compact record ends early');
    const s = Buffer.from(this.b.buffer, this.b.byteOffset + this.i, len).toString('latin1');
    this.i += len;
    return s;
  }
}
