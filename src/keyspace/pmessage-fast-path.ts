import type { Redis } from 'ioredis';
import { INCOMPLETE, RespScanner, UNSUPPORTED } from './resp-frames.js';

/**
 * The keyspace subscriber's own reading of pub/sub messages (issue #19). ioredis 6 decodes every
 * frame into an array of Buffers, makes strings of its type and pattern and emits them; on a
 * drain that was ~1/5 of the event loop. This sits in front of ioredis' decoder on each of the
 * connection's sockets: it cuts the bytes into whole RESP frames (RespScanner), hands each
 * `pmessage` (a RESP3 push, or a RESP2 array in subscriber mode, as ioredis routes them) to
 * `onPmessage` as two ranges of the socket's bytes, and gives every other frame, whole and in
 * order, to ioredis' decoder, which therefore never holds half a frame and keeps doing
 * everything else (replies, (un)subscribe counts, errors, the socket timeout).
 *
 * Falls back to ioredis alone for the rest of a connection (never for a frame it already
 * handled) when it cannot vouch for a frame (RespScanner's UNSUPPORTED), when a frame that is
 * not a pmessage stays incomplete past FALLBACK_PENDING_BYTES (a big reply on this connection
 * would otherwise be re-scanned per chunk), or when the decoder's data listener is not where
 * ioredis 6 puts it. Messages then arrive as `pmessageBuffer` events, which the caller listens
 * to as well; the fallback's reason is reported once per connection. A fault in its own reading
 * ends the connection (ioredis reconnects; the watcher records and reconciles the blind spot).
 */
export type PmessageHandler = (channel: Buffer, message: Buffer) => void;

/**
 * A pmessage as ranges of the bytes it was read from (`channel` and `message` are the same
 * buffer when the fast path read it): no view is made per message. The bytes stay as they are
 * for as long as the handler keeps a reference to them.
 */
export type RawPmessageHandler = (
  channel: Buffer,
  channelStart: number,
  channelEnd: number,
  message: Buffer,
  messageStart: number,
  messageEnd: number,
) => void;

/** A handler of views as a RawPmessageHandler (tests, and callers who want Buffers). */
export function viewsOf(handler: PmessageHandler): RawPmessageHandler {
  return (channel, cs, ce, message, ms, me) =>
    handler(channel.subarray(cs, ce), message.subarray(ms, me));
}

export interface PmessageFastPathStats {
  /** Messages read here. */
  fast: number;
  /** Frames handed to ioredis' decoder (replies, subscription counts, ...). */
  passed: number;
  /** Connections on which it fell back to ioredis, with the last reason. */
  fallbacks: number;
  lastFallback?: string;
}

export const FALLBACK_PENDING_BYTES = 1 << 20;

/**
 * Why a connection fell back to ioredis' decoder, as a bounded metric label
 * (`tokenwatch_keyspace_fast_path_fallbacks_total{reason}`), with the text the log says.
 */
export const FALLBACK_REASONS = {
  unsupported_frame: 'a frame the fast path does not read',
  pending_limit: 'a reply over 1 MiB on the subscriber connection',
  decoder_not_found: 'ioredis decoder listener not found',
  read_fault: 'fast path failed',
} as const;
export type FallbackReason = keyof typeof FALLBACK_REASONS;
export const FALLBACK_REASON_CODES = Object.keys(FALLBACK_REASONS) as readonly FallbackReason[];
/** Told once per connection that falls back: the reason's code and its text (with detail). */
export type FallbackListener = (text: string, reason: FallbackReason) => void;

/** A connection gives the fast path up: counted, its text kept, the listener told. */
function noteFallback(
  stats: PmessageFastPathStats,
  listener: FallbackListener,
  reason: FallbackReason,
  detail = '',
): void {
  const text = FALLBACK_REASONS[reason] + detail;
  stats.fallbacks++;
  stats.lastFallback = text;
  listener(text, reason);
}

const PUSH_PREFIX = Buffer.from('>4\r\n$8\r\npmessage\r\n', 'latin1');
const ARRAY_PREFIX = Buffer.from('*4\r\n$8\r\npmessage\r\n', 'latin1');
const PREFIX_LEN = PUSH_PREFIX.length;

type DataListener = (data: Buffer) => void;
interface RedisInternals {
  stream?: NodeJS.EventEmitter;
  condition?: { subscriber?: unknown; protocol?: number };
}

export function installPmessageFastPath(
  redis: Redis,
  onPmessage: RawPmessageHandler,
  onFallback: FallbackListener = () => undefined,
): PmessageFastPathStats {
  const stats: PmessageFastPathStats = { fast: 0, passed: 0, fallbacks: 0 };
  const internals = redis as unknown as RedisInternals;
  const hooked = new WeakSet<object>();
  // ioredis creates the socket's decoder synchronously in its connect handler and emits
  // 'connect' on the next tick, before any reply can be read.
  redis.on('connect', () => {
    const stream = internals.stream;
    if (!stream || hooked.has(stream)) return;
    hooked.add(stream);
    const decoder = stream.rawListeners('data')[0] as
      (DataListener & { listener?: unknown }) | undefined;
    if (typeof decoder !== 'function' || decoder.listener !== undefined) {
      noteFallback(stats, onFallback, 'decoder_not_found');
      return;
    }
    const reader = new FrameReader(
      (data) => decoder.call(stream, data),
      onPmessage,
      () => internals.condition?.protocol !== 3 && Boolean(internals.condition?.subscriber),
      stats,
      onFallback,
    );
    stream.removeListener('data', decoder);
    stream.prependListener('data', (data: Buffer) => {
      try {
        reader.write(data);
      } catch (err) {
        // A fault of our own reading (the handler's exceptions are caught in the reader): the
        // stream's position is lost, so the connection goes, as ioredis does with a protocol
        // error; it reconnects and the watcher reconciles the blind spot. Never a crash.
        noteFallback(stats, onFallback, 'read_fault', `: ${(err as Error).message}`);
        (stream as NodeJS.EventEmitter & { destroy(e?: Error): void }).destroy(err as Error);
      }
    });
  });
  return stats;
}

/** One socket's frames; exported for the fuzz test against ioredis' decoder. */
export class FrameReader {
  readonly #scanner = new RespScanner();
  #chunks: Buffer[] = [];
  #pendingBytes = 0;
  /** Bytes #chunks must reach before a scan can progress. */
  #needed = 0;
  #off = false;

  constructor(
    private readonly pass: DataListener,
    private readonly onPmessage: RawPmessageHandler,
    /** RESP2 arrays are messages only in subscriber mode (ioredis' rule). */
    private readonly arraysAreMessages: () => boolean,
    /** Counted here, fallbacks included. */
    private readonly stats: PmessageFastPathStats,
    private readonly fallback: FallbackListener,
  ) {}

  write(data: Buffer): void {
    if (this.#off) {
      this.pass(data);
      return;
    }
    let buf = data;
    if (this.#pendingBytes > 0) {
      this.#chunks.push(data);
      this.#pendingBytes += data.length;
      if (this.#pendingBytes < this.#needed) return;
      buf = Buffer.concat(this.#chunks, this.#pendingBytes);
      this.#chunks = [];
      this.#pendingBytes = 0;
    }
    const scanner = this.#scanner;
    let pos = 0;
    let passFrom = 0;
    while (pos < buf.length) {
      let end = UNSUPPORTED;
      if (this.#startsMessage(buf, pos)) {
        end = scanner.blobEnd(buf, pos + PREFIX_LEN); // pattern
        if (end >= 0) end = scanner.blobEnd(buf, end); // channel
        const channelStart = scanner.blobStart;
        const channelEnd = end - 2;
        if (end >= 0) end = scanner.blobEnd(buf, end); // message: the key
        if (end >= 0) {
          if (passFrom < pos) this.pass(buf.subarray(passFrom, pos));
          this.stats.fast++;
          this.#deliver(buf, channelStart, channelEnd, scanner.blobStart, end - 2);
          pos = passFrom = end;
          continue;
        }
      }
      // Anything else, a message whose parts are not three blobs included, is ioredis' to decode.
      const message = end === INCOMPLETE;
      if (end === UNSUPPORTED) {
        end = scanner.valueEnd(buf, pos);
        if (end >= 0) {
          this.stats.passed++;
          pos = end;
          continue;
        }
      }
      if (end === UNSUPPORTED) {
        this.#fallBack(buf.subarray(passFrom), 'unsupported_frame');
        return;
      }
      // INCOMPLETE: keep the frame's bytes until the scanner's lower bound is reached.
      if (passFrom < pos) this.pass(buf.subarray(passFrom, pos));
      const rest = buf.subarray(pos);
      if (!message && rest.length > FALLBACK_PENDING_BYTES) {
        this.#fallBack(rest, 'pending_limit');
        return;
      }
      this.#chunks = [rest];
      this.#pendingBytes = rest.length;
      this.#needed = scanner.needed - pos;
      return;
    }
    if (passFrom < pos) this.pass(buf.subarray(passFrom, pos));
  }

  /** The frame at pos starts like a pmessage ioredis would emit. */
  #startsMessage(buf: Buffer, pos: number): boolean {
    if (buf.length - pos < PREFIX_LEN) return false;
    const prefix = buf[pos] === 0x3e ? PUSH_PREFIX : buf[pos] === 0x2a ? ARRAY_PREFIX : undefined;
    if (!prefix) return false;
    for (let i = 1; i < PREFIX_LEN; i++) if (buf[pos + i] !== prefix[i]) return false;
    return prefix === PUSH_PREFIX || this.arraysAreMessages();
  }

  #deliver(buf: Buffer, cs: number, ce: number, ms: number, me: number): void {
    try {
      this.onPmessage(buf, cs, ce, buf, ms, me);
    } catch (err) {
      // As ioredis does with a listener's exception: surfaced, not taken for a protocol error.
      process.nextTick(() => {
        throw err;
      });
    }
  }

  #fallBack(rest: Buffer, reason: FallbackReason): void {
    this.#off = true;
    this.#chunks = [];
    this.#pendingBytes = 0;
    noteFallback(this.stats, this.fallback, reason);
    if (rest.length > 0) this.pass(rest);
  }
}
