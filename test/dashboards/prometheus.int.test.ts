import type { AddressInfo } from 'node:net';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AUTH0_LOGS_PATH } from '../../src/providers/push/auth0-logs.js';
import { PROVIDER_ROUTE_PREFIX } from '../../src/providers/push/provider-routes.js';
import { startApp, waitFor, type Harness } from '../helpers/app-harness.js';
import { fixtureText } from '../helpers/provider-fixtures.js';
import {
  startPrometheus,
  resultSize,
  type PrometheusServer,
  type QueryAnswer,
} from '../helpers/prometheus-server.js';
import {
  RULES_FILE,
  conditionOperands,
  dashboardExpressions,
  exposed,
  familiesInExposition,
  loadRules,
  metricNames,
  substitute,
  variableQueryToPromQL,
} from '../helpers/promql.js';
import { freePort, startRedis, type RedisServer } from '../helpers/redis-server.js';

/**
 * Every PromQL expression of the dashboards and rules, evaluated by a real Prometheus that
 * scrapes a real tokenwatch watching a real Redis, after token traffic that exercises every
 * metric. A renamed metric, a typo or a wrong label breaks this test, not a panel.
 *
 * How expressions are evaluated (instant queries at "now" through /api/v1/query):
 *
 * - Grafana variables are substituted first: `$job` -> the scrape job, `$instance` -> the
 *   target, the multi-value variables (`$kind`, `$node`, `$provider`) -> `.*` (their "All"
 *   value), `$__rate_interval` -> `1m`, `$__interval` -> `15s`, `$__range` -> `5m`. A variable
 *   without a value fails the test.
 * - Panel targets, variable queries (`label_values(sel, l)` -> `count by (l) (sel)`) and
 *   recording rules must return a non-empty result.
 * - Alert conditions are normally empty, so an empty result proves nothing. Each alert's full
 *   expression must be accepted by Prometheus (status success, empty or not); then the
 *   condition is split at its top-level comparison and set operators (`> < == ...`, `and`, `or`,
 *   `unless`, with their `on(...)`/`bool` modifiers) and every operand that is not a number
 *   literal must return data: for `rate > on(job) 2 * avg_over_time(rate[1d]) and rate > 1`
 *   that is `rate` and `2 * avg_over_time(rate[1d])`. So every metric, label matcher and
 *   recorded series an alert reads is proven to exist, without faking a firing condition.
 * - Metrics that other work in progress will add (PENDING) may be missing from /metrics; an
 *   expression that reads one of them is skipped (and listed) only while the scrape lacks it.
 *   Any other missing metric is a failure, before Prometheus is even asked.
 */

/**
 * Metrics still being built, whose panels and rules may return nothing until they exist: none
 * now. A name listed here is only skipped while it is absent from the scrape.
 */
const PENDING = new Set<string>([]);

/** Auth0 Log Stream push endpoint and poller: give the provider metrics series and samples. */
const AUTH0_TOKEN = 'prometheus-test-auth0-token';

let redis: RedisServer;
let h: Harness;
let prom: PrometheusServer;
let target: string;

beforeAll(async () => {
  redis = await startRedis();
  // A poller against a closed loopback port: its series exist and its runs fail, harmlessly.
  const closedPort = await freePort();
  h = startApp(redis.url, {
    yaml: [
      'providers:',
      '  auth0:',
      `    token: ${AUTH0_TOKEN}`,
      '    poll:',
      `      baseUrl: http://127.0.0.1:${closedPort}`,
      `      auth: { apiToken: ${AUTH0_TOKEN} }`,
      // Cache health (issue #21): keymiss counts, read sampling, one index rule.
      'metrics:',
      '  keyMisses: true',
      '  readSampling: { windowMs: 300, everySeconds: 3600 }',
      'indexes:',
      '  rules:',
      "    - { name: user_sessions, key: 'user:{sub}:sessions', kind: session }",
      // The audit stream (otel.logs) to a collector that is not there: its series exist.
      'otel:',
      '  logs:',
      `    endpoint: http://127.0.0.1:${closedPort}/v1/logs`,
      '    retryMaxSeconds: 1',
      '    drainTimeoutSeconds: 1',
      '    timeoutSeconds: 1',
    ].join('\n'),
  });
  await h.app.listen();
  const port = (h.app.http.server.address() as AddressInfo).port;
  target = `127.0.0.1:${port}`;
  [prom] = await Promise.all([
    startPrometheus({ targets: [target], ruleFiles: [RULES_FILE], interval: '1s' }),
    h.app.whenReady(),
  ]);
}, 40_000);

afterAll(async () => {
  await prom?.stop();
  await h?.stop();
  await redis?.stop();
});

async function metricsText(): Promise<string> {
  const res = await fetch(`http://${target}/metrics`);
  return res.text();
}

/** Sum of the samples of `name` whose labels include `labels`. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number {
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (want.every((w) => line.includes(w))) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

async function waitForMetric(name: string, labels: Record<string, string>, what: string) {
  await waitFor(async () => sample(await metricsText(), name, labels) > 0, 15_000, what);
}

/** Token life through a real Redis: every metric tokenwatch exports today gets samples. */
async function driveTraffic(c: Redis): Promise<void> {
  const p = c.pipeline();
  for (let i = 0; i < 20; i++) {
    p.set(`oauth:access:a${i}`, 'v', 'EX', 600);
    p.set(`oauth:refresh:r${i}`, 'v', 'EX', 86_400);
    p.set(`session:s${i}`, 'v', 'EX', 1800);
    p.set(`tenant:acme:rt:t${i}`, 'v', 'EX', 3600);
    p.set(`grant:user${i}:read`, 'v', 'EX', 60);
  }
  p.set('oauth:refresh:forever', 'v'); // written without TTL
  p.set('session:no-ttl', 'v');
  p.persist('oauth:access:a0'); // TTL removed
  p.expire('oauth:access:a1', 120); // TTL changed
  p.del('oauth:access:a2', 'session:s3'); // deleted
  p.rename('session:s4', 'session:s4b'); // renamed
  p.set('unrelated:key', 'v'); // matches no rule
  for (let i = 0; i < 5; i++) p.set(`oauth:access:short${i}`, 'v', 'PX', 300);
  p.get('oauth:access:a5'); // hit
  for (let i = 0; i < 5; i++) p.get(`oauth:access:missing${i}`); // misses
  await p.exec();

  // Expirations: Redis expires lazily or in its sampling cycle; reading the keys after their
  // due time expires them now (and publishes `expired`).
  await new Promise((r) => setTimeout(r, 400));
  for (let i = 0; i < 5; i++) await c.get(`oauth:access:short${i}`);
  await waitForMetric('tokenwatch_token_events_total', { event: 'expired' }, 'expirations');

  // Evictions under maxmemory (volatile-lru evicts keys with a TTL: the tokens).
  const big = c.pipeline();
  for (let i = 0; i < 50; i++) big.set(`session:evict${i}`, 'x'.repeat(10_000), 'EX', 600);
  await big.exec();
  await c.config('SET', 'maxmemory-policy', 'volatile-lru');
  const used = Number(/used_memory:(\d+)/.exec(await c.info('memory'))?.[1]);
  await c.config('SET', 'maxmemory', String(used - 200_000));
  await c.set('unrelated:trigger', 'x'); // a write makes Redis evict
  await waitForMetric('tokenwatch_token_events_total', { event: 'evicted' }, 'evictions');
  await c.config('SET', 'maxmemory', '0');

  // A blind spot: the keyspace subscriber is disconnected, tokens change meanwhile.
  await c.call('CLIENT', 'KILL', 'TYPE', 'pubsub');
  await c.set('oauth:access:while-blind', 'v', 'EX', 600);
  await waitForMetric('tokenwatch_keyspace_gaps_total', {}, 'a keyspace gap');
  await h.app.settle();

  // A read-sampling window with token reads in it (the hit ratio and its sample size), and an
  // index with an entry whose token is gone.
  const sampler = h.app.cacheHealth.sampler(`127.0.0.1:${redis.port}`);
  let sampled = false;
  const reader = redis.client();
  const reads = (async () => {
    for (let i = 0; !sampled; i++) {
      await reader.get('oauth:access:a5');
      await reader.get(`oauth:access:gone${i}`);
    }
  })();
  const window = await sampler?.sample();
  sampled = true;
  await reads;
  expect(window?.reads.access_token).toBeGreaterThan(0);
  // (Earlier sessions may have been evicted above: write the live one now.)
  await c.set('session:indexed', 'v', 'EX', 600);
  await c.sadd('user:alice:sessions', 'indexed', 'gone-session');
  expect((await h.app.indexes.run())?.indexes.user_sessions?.orphans).toBe(1);

  // Provider events: one accepted delivery, the same again (duplicates), one refused.
  const post = (token: string) =>
    fetch(`http://${target}${PROVIDER_ROUTE_PREFIX}${AUTH0_LOGS_PATH}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: fixtureText('auth0', 'log-stream-array.json'),
    });
  expect((await post(AUTH0_TOKEN)).status).toBe(200);
  expect((await post(AUTH0_TOKEN)).status).toBe(200);
  expect((await post('not-the-configured-token')).status).toBe(401);
}

interface Check {
  where: string;
  expr: string;
  /** `data`: must return a non-empty result; `parses`: must be accepted by Prometheus. */
  mode: 'data' | 'parses';
}

describe('dashboards and rules against a real Prometheus scraping tokenwatch', () => {
  it('evaluates every dashboard and rule expression with data', async () => {
    const c = redis.client();
    await driveTraffic(c);

    const vars: Record<string, string> = {
      job: prom.job,
      instance: target,
      kind: '.*',
      node: '.*',
      provider: '.*',
      __rate_interval: '1m',
      __interval: '15s',
      __range: '5m',
    };
    const rules = loadRules();
    const checks: Check[] = [];
    const { panels, variables } = dashboardExpressions();
    for (const e of panels)
      checks.push({ where: e.where, expr: substitute(e.expr, vars), mode: 'data' });
    for (const e of variables) {
      const promql = variableQueryToPromQL(substitute(e.expr, vars));
      if (promql) checks.push({ where: e.where, expr: promql, mode: 'data' });
    }
    for (const r of rules) {
      if (r.record) {
        checks.push({ where: `record ${r.record}`, expr: r.expr, mode: 'data' });
        continue;
      }
      checks.push({ where: `alert ${r.alert}`, expr: r.expr, mode: 'parses' });
      for (const [i, operand] of conditionOperands(r.expr).entries())
        checks.push({ where: `alert ${r.alert} operand ${i + 1}`, expr: operand, mode: 'data' });
    }

    // Recorded series stand for the metrics their rule reads.
    const recorded = new Map(rules.filter((r) => r.record).map((r) => [r.record as string, r]));
    const reads = (expr: string, seen = new Set<string>()): string[] =>
      metricNames(expr).flatMap((n) => {
        const rule = recorded.get(n);
        if (!rule) return [n];
        if (seen.has(n)) return [];
        seen.add(n);
        return reads(rule.expr, seen);
      });

    const families = familiesInExposition(await metricsText());
    const failures: string[] = [];
    const skipped: string[] = [];
    const active: Check[] = [];
    for (const check of checks) {
      const missing = [...new Set(reads(check.expr))].filter((n) => !exposed(n, families));
      const unknown = missing.filter((n) => !PENDING.has(n.replace(/_(bucket|sum|count)$/, '')));
      if (unknown.length > 0) {
        failures.push(
          `${check.where}: reads metrics tokenwatch does not export: ${unknown.join(', ')}`,
        );
      } else if (missing.length > 0 && check.mode === 'data') {
        skipped.push(`${check.where} (waits for ${missing.join(', ')})`);
      } else {
        active.push(check);
      }
    }
    expect(active.filter((a) => a.mode === 'data').length).toBeGreaterThan(40);

    // Poll until every expression has data (rate windows need two scrapes, recording rules an
    // evaluation): no fixed sleeps, robust on a loaded machine.
    const last = new Map<Check, QueryAnswer>();
    let pending = active;
    const deadline = Date.now() + 30_000;
    for (;;) {
      const answers: QueryAnswer[] = [];
      for (let i = 0; i < pending.length; i += 8) {
        answers.push(
          ...(await Promise.all(pending.slice(i, i + 8).map((x) => prom.query(x.expr)))),
        );
      }
      pending.forEach((x, i) => last.set(x, answers[i] as QueryAnswer));
      pending = pending.filter((x) => {
        const a = last.get(x) as QueryAnswer;
        if (a.status !== 'success') return false; // errors do not heal: report them
        return x.mode === 'data' && resultSize(a) === 0;
      });
      if (pending.length === 0 || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    for (const x of active) {
      const a = last.get(x) as QueryAnswer;
      if (a.status !== 'success')
        failures.push(`${x.where}: ${a.errorType}: ${a.error}\n    ${x.expr}`);
      else if (x.mode === 'data' && resultSize(a) === 0)
        failures.push(`${x.where}: empty\n    ${x.expr}`);
    }

    process.stdout.write(
      `prometheus check: ${active.length} expressions evaluated, ${skipped.length} skipped until their metrics exist:\n` +
        skipped.map((s) => `  - ${s}\n`).join(''),
    );
    expect(failures, `${failures.length} expressions failed:\n${failures.join('\n')}`).toEqual([]);
  }, 90_000);
});
