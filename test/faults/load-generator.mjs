// A steady token load from a separate process (fault-injection suite). Writes access tokens
// with TTLs, refresh tokens, sessions without TTL that later get one, deletes a share, and
// keeps going through disconnects. Prints one JSON line with what it offered when it stops
// (SIGTERM, or after --seconds).
//
// With --log FILE it also writes, when it stops, the keys of every acknowledged write and
// deletion and when each was acknowledged ({"written": [...], "writtenAt": [unix ms...],
// "deleted": [...], "deletedAt": [...]}) so a drill can account for each one.
//
// node test/faults/load-generator.mjs --port P [--cluster host:port,...] --rate N --seconds S --prefix X [--log FILE]
import { writeFileSync } from 'node:fs';
import { Cluster, Redis } from 'ioredis';

const args = Object.fromEntries(
  process.argv
    .slice(2)
    .reduce(
      (acc, a, i, all) => (a.startsWith('--') ? [...acc, [a.slice(2), all[i + 1]]] : acc),
      [],
    ),
);
const rate = Number(args.rate ?? 500);
const seconds = Number(args.seconds ?? 3600);
const prefix = args.prefix ?? 'f';
const client = args.cluster
  ? new Cluster(
      args.cluster
        .split(',')
        .map((s) => ({ host: s.split(':')[0], port: Number(s.split(':')[1]) })),
      {
        clusterRetryStrategy: () => 200,
      },
    )
  : new Redis({
      port: Number(args.port),
      host: '127.0.0.1',
      retryStrategy: () => 100,
      maxRetriesPerRequest: 1,
    });
client.on('error', () => undefined);

const offered = { written: 0, deleted: 0, expiring: 0, failed: 0 };
let n = 0;
let stopping = false;
const live = [];
const logged = args.log ? { written: [], writtenAt: [], deleted: [], deletedAt: [] } : undefined;
const ack = (list, key) => {
  logged?.[list].push(key);
  logged?.[`${list}At`].push(Date.now());
};

async function one() {
  const i = n++;
  try {
    switch (i % 5) {
      case 0:
      case 1:
        await client.set(`oauth:access:${prefix}${i}`, 'v', 'EX', 600);
        live.push(`oauth:access:${prefix}${i}`);
        ack('written', `oauth:access:${prefix}${i}`);
        offered.written++;
        break;
      case 2:
        await client.set(`oauth:refresh:${prefix}${i}`, 'v', 'EX', 3600);
        ack('written', `oauth:refresh:${prefix}${i}`);
        offered.written++;
        break;
      case 3:
        await client.set(`session:${prefix}${i}`, 'v', 'PX', 300);
        ack('written', `session:${prefix}${i}`);
        offered.written++;
        offered.expiring++;
        break;
      default: {
        const k = live.shift();
        if (k) {
          await client.del(k);
          ack('deleted', k);
          offered.deleted++;
        }
      }
    }
  } catch {
    offered.failed++;
  }
}

let inflight = 0;

async function finish() {
  if (stopping) return;
  stopping = true;
  // Commands already sent count once answered: the tally is then exactly what Redis did.
  const until = Date.now() + 5000;
  while (inflight > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
  if (logged) writeFileSync(args.log, JSON.stringify(logged));
  process.stdout.write(`${JSON.stringify(offered)}\n`);
  client.disconnect();
  setTimeout(() => process.exit(0), 50);
}
process.on('SIGTERM', () => void finish());
process.on('SIGINT', () => void finish());

const started = Date.now();
const tickMs = 20;
const perTick = Math.max(1, Math.round((rate * tickMs) / 1000));
const timer = setInterval(() => {
  if (stopping) return;
  if (Date.now() - started > seconds * 1000) {
    clearInterval(timer);
    void finish();
    return;
  }
  for (let k = 0; k < perTick; k++) {
    inflight++;
    void one().finally(() => inflight--);
  }
}, tickMs);
process.stdout.write('{"ready":true}\n');
