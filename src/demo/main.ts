#!/usr/bin/env node
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { TokenwatchApp } from '../app.js';
import { parseConfig } from '../config/load.js';
import { createLogger } from '../logger.js';
import { freePort, startRedisProcess } from '../redis-process.js';
import { TokenTraffic } from './traffic.js';
import { providerRevocations, type WebhookSecrets } from './webhooks.js';

/**
 * `npm run demo [-- --duration SECONDS] [--port PORT]`: a local redis-server, tokenwatch in
 * this process, and a traffic generator playing token life (logins, refresh rotations,
 * expirations, logouts) with scenes: tokens without expiry, provider revocations over the
 * webhooks, a churn spike, a keyspace blind spot and a mass eviction. Stops by itself.
 */

const USAGE = `usage: npm run demo -- [--duration SECONDS] [--port PORT]
  --duration  how long the demo runs (10-3600 s, default 60)
  --port      tokenwatch HTTP port (default 9464; a free port when it is taken)
`;

const out = (line: string): void => void process.stdout.write(`${line}\n`);

function demoConfig(redisUrl: string, port: number, dbPath: string, s: WebhookSecrets): string {
  return `
server: { host: 127.0.0.1, port: ${port} }
log: { level: warn }
redis: { url: '${redisUrl}', recheckIntervalSeconds: 5, infoIntervalSeconds: 2 }
tokens:
  - kind: access_token
    key: 'oauth:access:{token}'
    maxTtlSeconds: 3600
    joins: { tokenId: token }
  - kind: refresh_token
    key: 'oauth:refresh:{token}'
    maxTtlSeconds: 2592000
    joins: { tokenId: token }
  - kind: session
    key: 'session:{sid}'
    maxTtlSeconds: 86400
    joins: { sessionId: sid }
audit: { path: '${dbPath}' }
providers:
  auth0: { token: '${s.auth0Token}' }
  keycloak: { secret: '${s.keycloakSecret}' }
`;
}

async function portOrFree(wanted: number): Promise<number> {
  const free = await new Promise<boolean>((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(wanted, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
  return free ? wanted : freePort();
}

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The samples of a Prometheus text exposition. */
function samples(text: string): Sample[] {
  const out: Sample[] = [];
  for (const m of text.matchAll(/^([A-Za-z_:][\w:]*)(?:\{([^}]*)\})? (\S+)$/gm)) {
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g))
      labels[l[1] as string] = l[2] as string;
    out.push({ name: m[1] as string, labels, value: Number(m[3]) });
  }
  return out;
}

/** Sum of `name` by the value of `label` (one group '' without), over samples matching `where`. */
function sumBy(
  all: Sample[],
  name: string,
  label?: string,
  where: Record<string, string> = {},
): Map<string, number> {
  const out = new Map<string, number>();
  for (const s of all) {
    if (s.name !== name || Object.entries(where).some(([k, v]) => s.labels[k] !== v)) continue;
    const key = label ? (s.labels[label] ?? '') : '';
    out.set(key, (out.get(key) ?? 0) + s.value);
  }
  return out;
}
const total = (m: Map<string, number>): number => [...m.values()].reduce((a, b) => a + b, 0);
const fmt = (m: Map<string, number>): string =>
  [...m.entries()]
    .filter(([, v]) => v > 0)
    .map(([k, v]) => `${k}=${Math.round(v)}`)
    .join(' ') || 'none';

async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      duration: { type: 'string', default: '60' },
      port: { type: 'string', default: '9464' },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const duration = Number(values.duration);
  const wantedPort = Number(values.port);
  if (!Number.isFinite(duration) || duration < 10 || duration > 3600) {
    process.stderr.write(`--duration must be 10-3600 seconds\n${USAGE}`);
    return 2;
  }
  if (!Number.isInteger(wantedPort) || wantedPort < 1 || wantedPort > 65535) {
    process.stderr.write(`--port must be 1-65535\n${USAGE}`);
    return 2;
  }

  // Small maxmemory: the eviction scene fills it with cache values.
  // maxmemory with volatile-lru: memory pressure evicts keys that carry a TTL, the tokens.
  const redis = await startRedisProcess([
    '--maxmemory',
    '16mb',
    '--maxmemory-policy',
    'volatile-lru',
  ]);
  const dir = mkdtempSync(join(tmpdir(), 'tokenwatch-demo-'));
  const dbPath = join(dir, 'tokenwatch.db');
  const secrets: WebhookSecrets = {
    auth0Token: randomBytes(24).toString('base64url'),
    keycloakSecret: randomBytes(24).toString('base64url'),
  };
  const port = await portOrFree(wantedPort);
  const config = parseConfig(demoConfig(redis.url, port, dbPath, secrets), {});
  const app = new TokenwatchApp({ config, logger: createLogger('warn', process.stderr) });
  const base = `http://127.0.0.1:${port}`;
  const stop = new AbortController();
  const onSignal = (): void => stop.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const t0 = Date.now();
  const say = (line: string): void =>
    out(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(5)}s] ${line}`);
  const metricsText = async (): Promise<string> => (await fetch(`${base}/metrics`)).text();

  try {
    app.start();
    await app.listen();
    await app.whenReady(15_000);
    out(`tokenwatch demo: ${duration} s of token traffic (Ctrl-C stops early)
  redis-server   ${redis.url} (maxmemory 16mb, volatile-lru)
  metrics        curl -s ${base}/metrics | grep -E 'tokenwatch_(token_events_total|tokens_live)'
  readiness      curl -s ${base}/readyz
  findings       curl -s '${base}/v1/findings?state=open'
  audit ledger   node dist/cli.js audit list --db ${dbPath} --type 'token.*' --limit 20
  dashboards     docker compose up (Grafana on :3000) or point Prometheus at ${base}/metrics
`);
    const c = redis.client();
    const traffic = new TokenTraffic(c);
    const until = t0 + duration * 1000;
    const rate = 1.5; // logins per 200 ms tick

    const steady = (async () => {
      while (!stop.signal.aborted && Date.now() < until) {
        await traffic.tick(rate);
        await sleep(200, undefined, { signal: stop.signal }).catch(() => undefined);
      }
    })();

    let lastEvents = 0;
    let lastAt = Date.now();
    const progress = setInterval(() => {
      metricsText()
        .then((text) => {
          const all = samples(text);
          const events = total(sumBy(all, 'tokenwatch_token_events_total'));
          const perSec = (events - lastEvents) / ((Date.now() - lastAt) / 1000);
          lastEvents = events;
          lastAt = Date.now();
          const evicted = sumBy(all, 'tokenwatch_token_events_total', undefined, {
            event: 'evicted',
          });
          say(
            `live ${fmt(sumBy(all, 'tokenwatch_tokens_live', 'kind'))} | ${perSec.toFixed(0)} events/s` +
              ` | evicted ${total(evicted)}` +
              ` | open findings ${fmt(sumBy(all, 'tokenwatch_findings_open', 'rule'))}`,
          );
        })
        .catch(() => undefined);
    }, 5000);

    const scenes: [number, string, () => Promise<string>][] = [
      [0.15, 'tokens without expiry', () => traffic.tokensWithoutExpiry()],
      [0.25, 'provider revocations', () => providerRevocations(base, secrets, c, traffic)],
      [0.4, 'churn spike', () => traffic.churnSpike(rate, Math.min(8000, duration * 100))],
      [0.6, 'keyspace blind spot', () => traffic.blindSpot()],
      [0.75, 'mass eviction', () => traffic.massEviction()],
    ];
    for (const [at, name, scene] of scenes) {
      const wait = t0 + at * duration * 1000 - Date.now();
      if (wait > 0) await sleep(wait, undefined, { signal: stop.signal }).catch(() => undefined);
      if (stop.signal.aborted) break;
      say(`scene: ${name}...`);
      say(`scene: ${name}: ${await scene()}`);
    }
    const rest = until - Date.now();
    if (rest > 0) await sleep(rest, undefined, { signal: stop.signal }).catch(() => undefined);
    stop.abort();
    await steady;
    clearInterval(progress);

    await app.settle();
    const all = samples(await metricsText());
    const s = traffic.stats;
    out(`
done after ${((Date.now() - t0) / 1000).toFixed(0)} s: ${s.logins} logins, ${s.rotations} refresh rotations, ${s.logouts} logouts${s.refused ? `, ${s.refused} commands refused by Redis (OOM while full)` : ''}
  token events     ${fmt(sumBy(all, 'tokenwatch_token_events_total', 'event'))}
  blind spots      ${total(sumBy(all, 'tokenwatch_keyspace_gaps_total'))}
  provider events  ${fmt(sumBy(all, 'tokenwatch_provider_events_total', 'type'))}
  revocations      ${total(sumBy(all, 'tokenwatch_revocation_propagation_seconds_count'))} tracked, ${total(sumBy(all, 'tokenwatch_revocation_sla_breaches_total'))} past the SLA
  findings opened  ${fmt(sumBy(all, 'tokenwatch_findings_total', 'rule'))}
  audit records    ${total(sumBy(all, 'tokenwatch_audit_last_seq'))}
The audit ledger stays in ${dir}:
  node dist/cli.js audit list --db ${dbPath} --type 'token.evicted' --limit 5
  node dist/cli.js audit list --db ${dbPath} --type 'keyspace.gap'
  node dist/cli.js verify --db ${dbPath}
  rm -rf ${dir}   # when done`);
    return 0;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await app.stop('demo finished');
    await redis.stop();
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`demo failed: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
