import { MarkerAuth } from '../keyspace/marker-auth.js';
import { StreamPositionTracker, markerKey } from '../keyspace/stream-position.js';
import type { Item } from '../keyspace/notification-batch.js';

/**
 * The cost of the stream position hook per notification (issue #20), without Redis:
 * `node dist/bench/stream-position-cost.js [notifications] [rounds]`.
 *
 * Replays what the subscriber's `pmessageBuffer` handler does for each notification (event name
 * from the channel bytes, the Item object) with and without a StreamPositionTracker, over a
 * realistic mix (token writes, their `expire`, deletes, expirations; a marker every 4000
 * notifications, i.e. 250 ms at 16k notifications/s) and prints the median ns per notification.
 */
const n = Number(process.argv[2] ?? 2_000_000);
const rounds = Number(process.argv[3] ?? 7);
const prefix = '__keyevent@0__:';
const EVENTS = ['set', 'expire', 'set', 'expire', 'del', 'expired'];

// A pool of distinct notifications, cycled: a received key sits in the socket's read buffer,
// hot in cache, which 2 million distinct Buffers would not be (the loop would measure misses).
const POOL = 4096;
const channels: Buffer[] = [];
const keys: Buffer[] = [];
for (let i = 0; i < POOL; i++) {
  channels.push(Buffer.from(prefix + (EVENTS[i % EVENTS.length] as string), 'latin1'));
  keys.push(Buffer.from(`oauth:access:${(i * 2654435761) % 1_000_000_000}`, 'latin1'));
}
const markerChannel = Buffer.from(`${prefix}set`, 'latin1');
const markers: Buffer[] = [];
const auth = new MarkerAuth([{ id: 'b', key: Buffer.from('bench-marker-key-0123456789') }]).forNode(
  'n',
);
for (let m = 1; m <= Math.ceil(n / 4000); m++)
  markers.push(Buffer.from(markerKey(1, m, auth.tag(1, m)), 'latin1'));
const marker = markers.length;

/** The handler's body; `sink` keeps the Items alive per chunk as the watcher's batch does. */
function run(tracker: StreamPositionTracker | undefined): number {
  const batch: Item[] = [];
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    const isMarker = i % 4000 === 0;
    const message = (isMarker ? markers[i / 4000] : keys[i % POOL]) as Buffer;
    const channel = (isMarker ? markerChannel : channels[i % POOL]) as Buffer;
    const item: Item = {
      event: channel.toString('latin1', prefix.length),
      key: message,
      at: 0,
    };
    if (tracker) {
      const pos = tracker.observe(item.event, message);
      if (pos) item.pos = pos;
    }
    batch.push(item);
    if (batch.length === 5000) batch.length = 0;
  }
  return Number(process.hrtime.bigint() - t0) / n;
}

const median = (xs: number[]): number =>
  [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const off: number[] = [];
const on: number[] = [];
run(undefined);
run(new StreamPositionTracker({ auth }));
for (let r = 0; r < rounds; r++) {
  off.push(run(undefined));
  const t = new StreamPositionTracker({ auth });
  on.push(run(t));
  if (t.markersSeen !== marker) throw new Error(`saw ${t.markersSeen} of ${marker} markers`);
}
const min = (xs: number[]): number => Math.min(...xs);
const ns = (x: number): number => +x.toFixed(1);
const result = {
  notifications: n,
  rounds,
  medianOffNs: ns(median(off)),
  medianOnNs: ns(median(on)),
  medianHookNs: ns(median(on) - median(off)),
  minOffNs: ns(min(off)),
  minOnNs: ns(min(on)),
  minHookNs: ns(min(on) - min(off)),
};
process.stdout.write(`${JSON.stringify(result)}\n`);
