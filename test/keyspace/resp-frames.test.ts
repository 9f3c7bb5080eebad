import { describe, expect, it } from 'vitest';
import { INCOMPLETE, MAX_DEPTH, RespScanner, UNSUPPORTED } from '../../src/keyspace/resp-frames.js';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');

const WHOLE: string[] = [
  '+OK\r\n',
  '-ERR wrong\r\n',
  ':-42\r\n',
  '_\r\n',
  '#t\r\n',
  ',3.25\r\n',
  '(3492890328409238509324850943850943825024385\r\n',
  '$0\r\n\r\n',
  '$-1\r\n',
  '$5\r\nhe\r\no\r\n', // CRLF inside a blob is data
  '!3\r\nbad\r\n',
  '=8\r\ntxt:abcd\r\n',
  '*0\r\n',
  '*-1\r\n',
  '*2\r\n$1\r\na\r\n:1\r\n',
  '%1\r\n+k\r\n*1\r\n_\r\n',
  '~2\r\n#f\r\n,1\r\n',
  '>4\r\n$8\r\npmessage\r\n$1\r\n*\r\n$3\r\nch1\r\n$3\r\nkey\r\n',
];

describe('RespScanner', () => {
  it('finds the end of every RESP2/RESP3 type, and INCOMPLETE at every shorter cut', () => {
    const s = new RespScanner();
    for (const frame of WHOLE) {
      const buf = b(frame + '+next\r\n');
      expect(s.valueEnd(buf, 0), frame).toBe(frame.length);
      for (let cut = 0; cut < frame.length; cut++) {
        const short = b(frame.slice(0, cut));
        expect(s.valueEnd(short, 0), `${JSON.stringify(frame)} cut at ${cut}`).toBe(INCOMPLETE);
        // The lower bound never overshoots the frame: waiting for it cannot stall.
        expect(s.needed).toBeGreaterThan(cut);
        expect(s.needed).toBeLessThanOrEqual(frame.length);
      }
    }
  });

  it('refuses what it cannot vouch for instead of guessing a length', () => {
    const s = new RespScanner();
    for (const bad of [
      '?3\r\n', // unknown type
      '|1\r\n+a\r\n+b\r\n+c\r\n', // attributes: ioredis' decoder does not read them either
      '$?\r\n;3\r\nabc\r\n;0\r\n', // streamed string
      '*?\r\n.\r\n',
      '$3\r\nabcXY', // no CRLF where the length ends
      '$x\r\nabc\r\n',
      '$\r\n\r\n',
      '$-2\r\n',
      '!-1\r\n', // only $ and * have RESP2 nulls
      '%-1\r\n',
      '$1234567890123456\r\n', // more digits than any length Redis sends
      ':1\rX',
      '$ 3\r\nabc\r\n', // below '0' is no digit either
      '*1/\r\n:1\r\n',
      '$3\rXabc\r\n', // a length line's CR without LF
      '$3\r\nabc\rX', // a blob's end: CR without LF
      '$3\r\nabcX\n', // LF without CR
    ]) {
      expect(s.valueEnd(b(bad), 0), JSON.stringify(bad)).toBe(UNSUPPORTED);
    }
    expect(s.valueEnd(b('*1\r\n'.repeat(MAX_DEPTH + 1) + ':1\r\n'), 0)).toBe(UNSUPPORTED);
    expect(s.valueEnd(b('*1\r\n'.repeat(MAX_DEPTH) + ':1\r\n'), 0)).toBe(4 * MAX_DEPTH + 4);
  });

  it('waits for a big blob by its announced length, not byte by byte', () => {
    const s = new RespScanner();
    const frame = b(`$1000000\r\n${'x'.repeat(10)}`);
    expect(s.valueEnd(frame, 0)).toBe(INCOMPLETE);
    expect(s.needed).toBe('$1000000\r\n'.length + 1_000_000 + 2);
  });

  it('reads a blob with its bounds', () => {
    const s = new RespScanner();
    const buf = b('xx$3\r\nkey\r\n');
    expect(s.blobEnd(buf, 2)).toBe(buf.length);
    expect(buf.toString('latin1', s.blobStart, buf.length - 2)).toBe('key');
    expect(s.blobEnd(b(':3\r\n'), 0)).toBe(UNSUPPORTED);
    expect(s.blobEnd(b('$-1\r\n'), 0)).toBe(UNSUPPORTED);
    expect(s.blobEnd(b('$3\r\nke'), 0)).toBe(INCOMPLETE);
    expect(s.blobEnd(b('$12'), 0)).toBe(INCOMPLETE); // its length line is not there yet
    expect(s.blobEnd(b('xx'), 2)).toBe(INCOMPLETE);
    expect(s.needed).toBe(3);
    for (const bad of ['$3\r\nabc\rX', '$3\r\nabcX\n', '$3\rXabc\r\n', '$-2\r\n'])
      expect(s.blobEnd(b(bad), 0), JSON.stringify(bad)).toBe(UNSUPPORTED);
  });
});
