import { Redis } from 'ioredis';

/**
 * Scenario 2's load, in its own process like production traffic (in the benchmark's process it
 * would share tokenwatch's event loop): `SET oauth:access:<prefix><n> v EX 3600` at `rate` per
 * second for `seconds`, pipelined in 10 ms ticks. Prints {"sent":N,"seconds":S} when done.
 *
 * node dist/bench/rate-child.js PORT RATE SECONDS PREFIX
 */
const [port, rate, seconds, prefix] = process.argv.slice(2);
const perSec = Number(rate ?? 10_000);
const client = new Redis({ host: '127.0.0.1', port: Number(port), maxRetriesPerRequest: 1 });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const perTick = Math.max(1, Math.round(perSec / 100));
const started = Date.now();
let sent = 0;
while (Date.now() - started < Number(seconds ?? 5) * 1000) {
  const p = client.pipeline();
  for (let i = 0; i < perTick; i++)
    p.set(`oauth:access:${prefix ?? 'lat'}${sent++}`, 'v', 'EX', 3600);
  await p.exec();
  const wait = started + (sent / perSec) * 1000 - Date.now();
  if (wait > 0) await sleep(wait);
}
process.stdout.write(`${JSON.stringify({ sent, seconds: (Date.now() - started) / 1000 })}\n`);
client.disconnect();
