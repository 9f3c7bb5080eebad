import { percentile } from './stats.js';

/**
 * Scenario 3's load, in its own process like a real identity provider (in the benchmark's
 * process, building and sending the requests would share tokenwatch's event loop): `requests`
 * Auth0 log-stream deliveries of `batch` events each, `concurrency` at a time, each timed until
 * its 2xx. Prints {"events":N,"seconds":S,"p50ms":..,"p99ms":..} when done.
 *
 * node dist/bench/webhook-child.js URL TOKEN BATCH REQUESTS CONCURRENCY
 */
const [url = '', token = '', batchArg, requestsArg, concurrencyArg] = process.argv.slice(2);
const batch = Number(batchArg ?? 100);
const requests = Number(requestsArg ?? 300);
const concurrency = Number(concurrencyArg ?? 4);

function auth0Event(i: number): Record<string, unknown> {
  return {
    log_id: `9001${String(i).padStart(20, '0')}`,
    data: {
      date: new Date().toISOString(),
      type: 'sertft',
      description: 'Successful refresh token exchange',
      client_id: 'bench-client',
      user_id: `auth0|user${i % 1000}`,
      details: { access_token_jti: `jti-${i}` },
    },
  };
}

const lat: number[] = [];
let next = 0;
let id = 0;
const started = performance.now();
const worker = async (): Promise<void> => {
  while (next < requests) {
    next += 1;
    const body =
      batch === 1 ? auth0Event(id++) : Array.from({ length: batch }, () => auth0Event(id++));
    const t = performance.now();
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify(body),
    });
    await res.arrayBuffer();
    if (res.status >= 300) throw new Error(`webhook answered ${res.status}`);
    lat.push(performance.now() - t);
  }
};
await Promise.all(Array.from({ length: concurrency }, worker));
const seconds = (performance.now() - started) / 1000;
process.stdout.write(
  `${JSON.stringify({ events: id, seconds, p50ms: percentile(lat, 50), p99ms: percentile(lat, 99) })}\n`,
);
