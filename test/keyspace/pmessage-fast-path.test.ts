import { Decoder } from 'ioredis/built/resp/decoder.js';
import { describe, expect, it, vi } from 'vitest';
import {
  FALLBACK_PENDING_BYTES,
  FrameReader,
  type PmessageFastPathStats,
  viewsOf,
} from '../../src/keyspace/pmessage-fast-path.js';
import { mulberry32 } from '../helpers/mulberry32.js';

/**
 * The fast path against ioredis' own decoder (issue #19): the same byte stream, cut into
 * different random chunks, must give the same messages, replies, pushes and errors in the same
 * order, whether ioredis decodes all of it or the FrameReader takes the messages and hands the
 * rest to ioredis.
 */

type Out = unknown[];

function norm(v: unknown): unknown {
  if (Buffer.isBuffer(v)) return `b:${v.toString('hex')}`;
  if (v instanceof Error) return `E:${v.message}`;
  if (Array.isArray(v)) return v.map(norm);
  if (v instanceof Map) return [...v].map(([k, x]) => [norm(k), norm(x)]);
  if (v instanceof Set) return [...v].map(norm);
  if (v instanceof String) return `s:${String(v)}`;
  if (v !== null && typeof v === 'object') return Object.entries(v).map(([k, x]) => [k, norm(x)]);
  return typeof v === 'bigint' ? `n:${v}` : v;
}

const isMessage = (v: unknown): v is Buffer[] =>
  Array.isArray(v) &&
  v.length === 4 &&
  v.every((x) => Buffer.isBuffer(x)) &&
  String(v[0]) === 'pmessage';

/** ioredis' decoder, as its DataHandler configures it, with its outputs in order. */
function reference(out: Out, arraysAreMessages: boolean): Decoder {
  const mapping = { 36: Buffer, 43: Buffer, 61: Buffer, 40: String };
  return new Decoder({
    getTypeMapping: () => mapping,
    onReply: (r: unknown) =>
      out.push(arraysAreMessages && isMessage(r) ? msg(r[2]!, r[3]!) : ['reply', norm(r)]),
    onErrorReply: (e: Error) => out.push(['error', e.message]),
    onPush: (r: unknown) => out.push(isMessage(r) ? msg(r[2]!, r[3]!) : ['push', norm(r)]),
  });
}
const msg = (channel: Buffer, message: Buffer): unknown[] => [
  'msg',
  channel.toString('hex'),
  message.toString('hex'),
];

function bytes(r: () => number): Buffer {
  const big = r() < 0.02;
  const n = big ? 40_000 + Math.floor(r() * 100_000) : Math.floor(r() * 24);
  const out = Buffer.alloc(n);
  for (let i = 0; i < n; i++) out[i] = r() < 0.15 ? (r() < 0.5 ? 13 : 10) : Math.floor(r() * 256);
  return out;
}
const blob = (x: Buffer): Buffer =>
  Buffer.concat([Buffer.from(`$${x.length}\r\n`), x, Buffer.from('\r\n')]);

function value(r: () => number, depth: number): Buffer {
  const k = Math.floor(r() * (depth > 2 ? 10 : 14));
  const word = (): string => Math.floor(r() * 1e6).toString(36);
  switch (k) {
    case 0:
      return Buffer.from(`+${word()}\r\n`);
    case 1:
      return Buffer.from(`-ERR ${word()}\r\n`);
    case 2:
      return Buffer.from(`:${Math.floor((r() - 0.5) * 1e9)}\r\n`);
    case 3:
      return Buffer.from('_\r\n');
    case 4:
      return Buffer.from(`#${r() < 0.5 ? 't' : 'f'}\r\n`);
    case 5:
      return Buffer.from(`,${((r() - 0.5) * 1e4).toFixed(3)}\r\n`);
    case 6:
      return Buffer.from(`(${Math.floor(r() * 1e9)}${Math.floor(r() * 1e9)}\r\n`);
    case 7:
      return blob(bytes(r));
    case 8: {
      const t = `ERR ${word()}`;
      return r() < 0.5 ? Buffer.from('$-1\r\n') : Buffer.from(`!${t.length}\r\n${t}\r\n`);
    }
    case 9: {
      const t = word();
      return Buffer.from(`=${t.length + 4}\r\ntxt:${t}\r\n`);
    }
    default: {
      const type = '*~%'[k - 10] ?? '*';
      const n = Math.floor(r() * 4);
      const items = type === '%' ? n * 2 : n;
      return Buffer.concat([
        Buffer.from(`${type}${n}\r\n`),
        ...Array.from({ length: items }, () => value(r, depth + 1)),
      ]);
    }
  }
}

function frame(r: () => number): { bytes: Buffer; message: boolean } {
  const x = r();
  if (x < 0.55) {
    const push = r() < 0.8 ? '>' : '*';
    return {
      bytes: Buffer.concat([
        Buffer.from(`${push}4\r\n$8\r\npmessage\r\n`),
        blob(bytes(r)),
        blob(bytes(r)),
        blob(bytes(r)),
      ]),
      message: push === '>',
    };
  }
  if (x < 0.62)
    return {
      bytes: Buffer.concat([
        Buffer.from('>3\r\n$10\r\npsubscribe\r\n'),
        blob(bytes(r)),
        Buffer.from(':1\r\n'),
      ]),
      message: false,
    };
  if (x < 0.66)
    return {
      bytes: Buffer.from('>4\r\n$8\r\npmessage\r\n:1\r\n$1\r\nc\r\n$1\r\nk\r\n'),
      message: false,
    };
  if (x < 0.74) return nearMiss(r);
  return { bytes: value(r, 0), message: false };
}

/** A frame one byte of the message prefix away from a message: a set, a map, 5 items, another word. */
function nearMiss(r: () => number): { bytes: Buffer; message: boolean } {
  const parts = [blob(bytes(r)), blob(bytes(r)), blob(bytes(r))];
  const word = Buffer.from('pmessage');
  let head = '>4';
  const v = Math.floor(r() * 5);
  if (v === 0) head = '~4';
  else if (v === 1) head = '%2';
  else if (v === 2) {
    head = r() < 0.5 ? '>5' : '*5';
    parts.push(blob(bytes(r)));
  } else {
    const at = Math.floor(r() * word.length);
    word[at] = word[at] === 0x78 ? 0x79 : 0x78; // x or y
    head = v === 3 ? '>4' : '*4';
  }
  const bytesOf = Buffer.concat([
    Buffer.from(`${head}\r\n$8\r\n`),
    word,
    Buffer.from('\r\n'),
    ...parts,
  ]);
  return { bytes: bytesOf, message: false };
}

function chunks(r: () => number, all: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0; at < all.length;) {
    const size = r() < 0.1 ? 65_536 : 1 + Math.floor(r() * (r() < 0.5 ? 8 : 600));
    out.push(all.subarray(at, at + size));
    at += size;
  }
  return out;
}

function run(
  all: Buffer,
  r: () => number,
  arraysAreMessages: boolean,
): { ref: Out; ours: Out; stats: PmessageFastPathStats; reasons: string[] } {
  const ref: Out = [];
  const refDecoder = reference(ref, arraysAreMessages);
  feed(chunks(r, all), (c) => refDecoder.write(c), ref);
  const ours: Out = [];
  const passDecoder = reference(ours, arraysAreMessages);
  const stats: PmessageFastPathStats = { fast: 0, passed: 0, fallbacks: 0 };
  const reasons: string[] = [];
  const reader = new FrameReader(
    (data) => passDecoder.write(data),
    viewsOf((channel, message) => ours.push(msg(Buffer.from(channel), Buffer.from(message)))),
    () => arraysAreMessages,
    stats,
    (why, code) => reasons.push(`${code}: ${why}`),
  );
  feed(chunks(r, all), (c) => reader.write(c), ours);
  return { ref, ours, stats, reasons };
}

/** Writes the reads in order; a protocol error ends the stream as an output of its own. */
function feed(reads: Buffer[], write: (c: Buffer) => void, out: Out): void {
  for (const c of reads) {
    try {
      write(c);
    } catch (err) {
      out.push(['fatal', (err as Error).message]);
      return;
    }
  }
}

describe('FrameReader against ioredis decoder', () => {
  it('gives the same messages, replies, pushes and errors in the same order, for any cut of the stream', () => {
    let messages = 0;
    let fast = 0;
    for (let seed = 1; seed <= 300; seed++) {
      const r = mulberry32(seed);
      const arraysAreMessages = seed % 3 === 0;
      const frames = Array.from({ length: 5 + Math.floor(r() * 60) }, () => frame(r));
      const all = Buffer.concat(frames.map((f) => f.bytes));
      const { ref, ours, stats } = run(all, r, arraysAreMessages);
      expect(ours, `seed ${seed}`).toEqual(ref);
      expect(stats.fallbacks, `seed ${seed}`).toBe(0);
      const want = frames.filter(
        (f) =>
          f.message ||
          (arraysAreMessages &&
            f.bytes[0] === 0x2a &&
            f.bytes.subarray(0, 18).toString() === '*4\r\n$8\r\npmessage\r\n'),
      ).length;
      messages += want;
      fast += stats.fast;
      // Every other frame went to ioredis, counted once (a message that is not a message
      // included: RESP2 arrays outside subscriber mode).
      expect(stats.passed, `seed ${seed}`).toBe(frames.length - want);
    }
    // The comparison above is only worth something if the fast path did read the messages.
    expect(messages).toBeGreaterThan(3000);
    expect(fast).toBe(messages);
  });

  it('hands the rest of the connection to ioredis at a frame it cannot vouch for, after what came before', () => {
    for (let seed = 1; seed <= 100; seed++) {
      const r = mulberry32(1000 + seed);
      const before = Array.from({ length: 1 + Math.floor(r() * 10) }, () => frame(r).bytes);
      const bad = [
        Buffer.from('|1\r\n+a\r\n+b\r\n:1\r\n'),
        Buffer.from('$3\r\nabcXY'),
        Buffer.from('?\r\n'),
        Buffer.from('$?\r\n;1\r\na\r\n;0\r\n'),
      ][seed % 4]!;
      const after = Array.from({ length: 3 }, () => frame(r).bytes);
      const all = Buffer.concat([...before, bad, ...after]);
      const { ref, ours, stats, reasons } = run(all, r, false);
      expect(ours, `seed ${seed}`).toEqual(ref);
      expect(stats.fallbacks).toBe(1);
      expect(reasons).toEqual(['unsupported_frame: a frame the fast path does not read']);
      expect(stats.lastFallback).toBe('a frame the fast path does not read');
    }
  });

  it('falls back instead of re-scanning a big reply chunk after chunk', () => {
    const out: Buffer[] = [];
    const stats: PmessageFastPathStats = { fast: 0, passed: 0, fallbacks: 0 };
    const reader = new FrameReader(
      (d) => out.push(Buffer.from(d)),
      () => undefined,
      () => false,
      stats,
      (why, code) => (stats.lastFallback = `${code}: ${why}`),
    );
    const reply = Buffer.concat([
      Buffer.from('*200000\r\n'),
      Buffer.from(':123456\r\n'.repeat(200_000)),
    ]);
    for (let at = 0; at < reply.length; at += 65_536) reader.write(reply.subarray(at, at + 65_536));
    expect(stats.lastFallback).toBe(
      'pending_limit: a reply over 1 MiB on the subscriber connection',
    );
    expect(Buffer.concat(out).equals(reply)).toBe(true);
    expect(FALLBACK_PENDING_BYTES).toBe(1 << 20);
  });

  it('waits for a big message by its announced length: one concatenation, no fallback', () => {
    const key = Buffer.alloc(2 << 20, 0x6b); // 2 MiB, past the 1 MiB bound for other replies
    const frame = Buffer.concat([
      Buffer.from('>4\r\n$8\r\npmessage\r\n$1\r\n*\r\n$18\r\n__keyevent@0__:set\r\n'),
      Buffer.from(`$${key.length}\r\n`),
      key,
      Buffer.from('\r\n:1\r\n'),
    ]);
    const got: Buffer[] = [];
    const passed: Buffer[] = [];
    const stats: PmessageFastPathStats = { fast: 0, passed: 0, fallbacks: 0 };
    const reader = new FrameReader(
      (d) => passed.push(Buffer.from(d)),
      viewsOf((_c, m) => got.push(Buffer.from(m))),
      () => false,
      stats,
      () => undefined,
    );
    const concat = vi.spyOn(Buffer, 'concat');
    try {
      for (let at = 0; at < frame.length; at += 65_536)
        reader.write(frame.subarray(at, at + 65_536));
      expect(concat).toHaveBeenCalledTimes(1);
    } finally {
      concat.mockRestore();
    }
    expect(stats).toMatchObject({ fast: 1, passed: 1, fallbacks: 0 });
    expect(got).toHaveLength(1);
    expect(got[0]!.equals(key)).toBe(true);
    expect(Buffer.concat(passed).toString()).toBe(':1\r\n');

    // Most of it in one read (TLS records, a large socket buffer): still a message, read here.
    const one = new FrameReader(
      () => undefined,
      viewsOf((_c, m) => got.push(Buffer.from(m))),
      () => false,
      stats,
      () => undefined,
    );
    one.write(frame.subarray(0, frame.length - 10));
    one.write(frame.subarray(frame.length - 10));
    expect(stats).toMatchObject({ fast: 2, fallbacks: 0 });
    expect(got[1]!.equals(key)).toBe(true);
  });

  it('surfaces a handler exception asynchronously, as ioredis does, and goes on reading', () => {
    const seen: string[] = [];
    const stats: PmessageFastPathStats = { fast: 0, passed: 0, fallbacks: 0 };
    const reader = new FrameReader(
      () => undefined,
      viewsOf((_c, m) => {
        seen.push(m.toString());
        if (m.toString() === 'boom') throw new Error('listener failed');
      }),
      () => false,
      stats,
      () => undefined,
    );
    const pm = (k: string): Buffer =>
      Buffer.from(`>4\r\n$8\r\npmessage\r\n$1\r\n*\r\n$1\r\nc\r\n$${k.length}\r\n${k}\r\n`);
    const later: (() => void)[] = [];
    const tick = vi
      .spyOn(process, 'nextTick')
      .mockImplementation((fn) => void later.push(fn as () => void));
    try {
      reader.write(Buffer.concat([pm('a'), pm('boom'), pm('b')]));
    } finally {
      tick.mockRestore();
    }
    expect(seen).toEqual(['a', 'boom', 'b']);
    expect(stats.fast).toBe(3);
    expect(later).toHaveLength(1);
    expect(() => later[0]!()).toThrow('listener failed');
  });
});
