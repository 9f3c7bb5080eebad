// The soak drill's token traffic, from its own process (`npm run test:soak`). A steady mix of
// logins, refreshes, logouts and short sessions against one Redis, with a 10x refresh burst at
// fixed offsets. Every live token is written with a TTL (SET EX / PX): a `token_without_expiry`
// finding during the drill is therefore always false.
//
// node test/soak/soak-load.mjs --port P --rate N --users U --bursts 40,100,... --burst-seconds S
//   --burst-factor F --seconds S --prefix X
// Prints {"ready":true}, then one JSON line per burst ({"burst":{"start","end"}}) and a last
// line with what it offered when it stops (SIGTERM or --seconds).
import { Redis } from 'ioredis';

const args = Object.fromEntries(
  process.argv
    .slice(2)
    .reduce(
      (acc, a, i, all) => (a.startsWith('--') ? [...acc, [a.slice(2), all[i + 1]]] : acc),
      [],
    ),
);
const rate = Number(args.rate ?? 400);
const seconds = Number(args.seconds ?? 3600);
const prefix = args.prefix ?? 's';
const bursts = String(args.bursts ?? '')
  .split(',')
  .filter(Boolean)
  .map(Number);
const burstMs = Number(args['burst-seconds'] ?? 5) * 1000;
const factor = Number(args['burst-factor'] ?? 10);
const client = new Redis({
  port: Number(args.port),
  host: '127.0.0.1',
  retryStrategy: () => 100,
  maxRetriesPerRequest: 1,
});
client.on('error', () => undefined);

const offered = { ops: 0, written: 0, deleted: 0, burstOps: 0, failed: 0 };
let n = 0;
let stopping = false;
const liveAccess = [];

async function steady() {
  const i = n++;
  offered.ops++;
  try {
    switch (i % 10) {
      case 0:
      case 1:
      case 2:
      case 3:
        await client.set(`oauth:access:${prefix}${i}`, 'v', 'EX', 30);
        liveAccess.push(`oauth:access:${prefix}${i}`);
        if (liveAccess.length > 5000) liveAccess.shift();
        offered.written++;
        break;
      case 4:
      case 5:
        await client.set(`oauth:refresh:${prefix}${i}`, 'v', 'EX', 90);
        offered.written++;
        break;
      case 6:
      case 7:
        await client.set(`session:${prefix}${i}`, 'v', 'EX', 60);
        offered.written++;
        break;
      case 8: {
        // A short session: Redis removes these lazily, which builds the expiry backlog that an
        // outside SCAN later flushes at once.
        await client.set(`session:${prefix}${i}`, 'v', 'PX', 3000);
        offered.written++;
        break;
      }
      default: {
        const k = liveAccess.shift();
        if (k) {
          await client.del(k);
          offered.deleted++;
        }
      }
    }
  } catch {
    offered.failed++;
  }
}

// Burst refreshes rotate the pre-seeded users' tokens (`seed<u>`, then `seed<u>.<generation>`):
// the old pair is deleted and a new one written with the same long TTL, so a burst changes the
// churn rate, not the live count, and leaves no wave of expirations behind it.
const users = Number(args.users ?? 0);
const generation = new Uint32Array(users);
let nextUser = 0;
const seedKey = (u, g) => (g === 0 ? `seed${u}` : `seed${u}.${g}`);

/** A refresh: a user's access + refresh token pair is replaced. */
async function refresh() {
  if (users === 0) return;
  const u = nextUser++ % users;
  const g = generation[u];
  generation[u] = g + 1;
  offered.burstOps++;
  try {
    await client
      .multi()
      .del(`oauth:access:${seedKey(u, g)}`, `oauth:refresh:${seedKey(u, g)}`)
      .set(`oauth:access:${seedKey(u, g + 1)}`, 'v', 'EX', 3000)
      .set(`oauth:refresh:${seedKey(u, g + 1)}`, 'v', 'EX', 86400)
      .exec();
    offered.written += 2;
    offered.deleted += 2;
  } catch {
    offered.failed++;
  }
}

function finish() {
  if (stopping) return;
  stopping = true;
  process.stdout.write(`${JSON.stringify({ offered })}\n`);
  client.disconnect();
  setTimeout(() => process.exit(0), 50);
}
process.on('SIGTERM', finish);
process.on('SIGINT', finish);

const started = Date.now();
const tickMs = 20;
const perTick = Math.max(1, Math.round((rate * tickMs) / 1000));
// A refresh is four commands (two DEL, two SET): (factor - 1) x the steady rate on top of it.
const burstPerTick = Math.max(1, Math.round(((factor - 1) * rate * tickMs) / 1000 / 4));
let burstOpen = null;
const timer = setInterval(() => {
  if (stopping) return;
  const t = Date.now() - started;
  if (t > seconds * 1000) {
    clearInterval(timer);
    finish();
    return;
  }
  for (let k = 0; k < perTick; k++) void steady();
  const due = bursts.find((b) => t >= b * 1000 && t < b * 1000 + burstMs);
  if (due !== undefined) {
    if (burstOpen === null) burstOpen = Date.now();
    for (let k = 0; k < burstPerTick; k++) void refresh();
  } else if (burstOpen !== null) {
    process.stdout.write(`${JSON.stringify({ burst: { start: burstOpen, end: Date.now() } })}\n`);
    burstOpen = null;
  }
}, tickMs);
process.stdout.write(`${JSON.stringify({ ready: true, started })}\n`);
