import { Decoder } from 'ioredis/built/resp/decoder.js';
import {
  FrameReader,
  viewsOf,
  type PmessageFastPathStats,
} from '../keyspace/pmessage-fast-path.js';

/**
 * The keyspace subscriber's message reading alone, without Redis (issue #19):
 * `node dist/bench/resp-decode.js [messages] [rounds]`.
 *
 * The same bytes Redis sends for `messages` keyevent notifications (RESP3 pushes, `set` and
 * `expire` alternating, 64 KiB socket reads) through ioredis 6's decoder as its DataHandler uses
 * it (the message type and pattern made strings, the channel and key handed on as Buffers), and
 * through the fast path's FrameReader; the handler reads the event name and the key's length in
 * both. Prints the best µs per message of each over `rounds` alternating rounds.
 */
const n = Number(process.argv[2] ?? 200_000);
const rounds = Number(process.argv[3] ?? 12);

const parts: string[] = [];
for (let i = 0; i < n; i++) {
  const channel = i % 2 === 1 ? '__keyevent@0__:expire' : '__keyevent@0__:set';
  const key = `oauth:access:${((i * 2654435761) >>> 0).toString(16)}${i}`;
  parts.push(
    `>4\r\n$8\r\npmessage\r\n$16\r\n__keyevent@0__:*\r\n$${channel.length}\r\n${channel}\r\n$${key.length}\r\n${key}\r\n`,
  );
}
const all = Buffer.from(parts.join(''), 'latin1');
const reads: Buffer[] = [];
for (let at = 0; at < all.length; at += 65_536)
  reads.push(Buffer.from(all.subarray(at, at + 65_536)));

let sink = 0;
const handler = (channel: Buffer, message: Buffer): void => {
  sink += channel.toString('latin1', 15).length + message.length;
};

function viaIoredis(): void {
  const mapping = { 36: Buffer, 43: Buffer, 61: Buffer, 40: String };
  const decoder = new Decoder({
    getTypeMapping: () => mapping,
    onReply: () => undefined,
    onErrorReply: () => undefined,
    onPush: (reply: Buffer[]) => {
      if (String(reply[0]) !== 'pmessage') return;
      sink += String(reply[1]).length; // the pattern, made a string by ioredis
      handler(reply[2] as Buffer, reply[3] as Buffer);
    },
  });
  for (const r of reads) decoder.write(r);
}

function viaFastPath(): void {
  const stats: PmessageFastPathStats = { fast: 0, passed: 0, fallbacks: 0 };
  const reader = new FrameReader(
    () => undefined,
    viewsOf(handler),
    () => false,
    stats,
    () => undefined,
  );
  for (const r of reads) reader.write(r);
  if (stats.fast !== n) throw new Error(`fast path read ${stats.fast} of ${n} messages`);
}

const best = { ioredis: Infinity, fastPath: Infinity };
for (let round = 0; round < rounds; round++) {
  for (const [name, run] of [
    ['ioredis', viaIoredis],
    ['fastPath', viaFastPath],
  ] as const) {
    const t = process.hrtime.bigint();
    run();
    best[name] = Math.min(best[name], Number(process.hrtime.bigint() - t) / 1000 / n);
  }
}
process.stdout.write(
  `${JSON.stringify({
    messages: n,
    usPerMessage: { ioredis: +best.ioredis.toFixed(3), fastPath: +best.fastPath.toFixed(3) },
    ratio: +(best.ioredis / best.fastPath).toFixed(1),
    read: sink > 0,
  })}\n`,
);
