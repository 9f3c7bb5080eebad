import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { TokenwatchApp } from '../../src/app.js';
import type { AuditRecord } from '../../src/audit/record.js';
import { parseConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/logger.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';
import { startApp, waitFor, type Harness } from '../helpers/app-harness.js';

/**
 * The keyspace side of issues #15 and #16 against a real redis-server: the baseline is evidence
 * (token.present), a rewrite is a rewrite, reconciliation records TTLs, a SET EX never reads as
 * a write without TTL however late its `expire` arrives, and expiry backlog is not churn.
 */

let redis: RedisServer;
let h: Harness | undefined;

beforeAll(async () => {
  // DEBUG SET-ACTIVE-EXPIRE lets a test hold a backlog of long-due keys, as a busy Redis does.
  redis = await startRedis({ args: ['--enable-debug-command', 'local'] });
});
afterAll(async () => {
  await redis.stop();
});
afterEach(async () => {
  await h?.stop();
  h = undefined;
  const c = redis.client();
  await c.call('DEBUG', 'SET-ACTIVE-EXPIRE', '1');
  await c.flushall();
  await c.config('SET', 'notify-keyspace-events', '');
  c.disconnect();
});

/** Records of `type` once at least `min` committed. */
async function records(hh: Harness, min: number, type: string): Promise<AuditRecord[]> {
  let rows: AuditRecord[] = [];
  await waitFor(
    async () => {
      await hh.app.settle();
      hh.app.ledger.flush();
      rows = hh.app.ledger.list({ type });
      return rows.length >= min;
    },
    20_000,
    `${min} ${type} records`,
  );
  return rows;
}

async function metric(hh: Harness, name: string, labels: Record<string, string>): Promise<number> {
  const text = await hh.app.metrics.registry.metrics();
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    if (want.every((w) => line.includes(w))) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return Number.NaN;
}

const byFp = (rows: AuditRecord[], fp: string) => rows.filter((r) => r.fingerprint === fp);

describe('the baseline is evidence', () => {
  it('records every pre-existing token as token.present with its TTL, flags the one without, and takes a rewrite for a rewrite', async () => {
    const c = redis.client();
    await c.set('oauth:access:pre1', 'v', 'EX', 3000);
    await c.set('oauth:access:pre2', 'v', 'EX', 3000);
    await c.set('session:pre-nottl', 'v');
    await c.set('unrelated', 'v');
    h = startApp(redis.url);
    await h.app.whenReady();
    const fp = (s: string) => h!.app.fingerprinter.ofLatin1(s);

    const present = await records(h, 3, 'token.present');
    expect(present).toHaveLength(3);
    const [pre2] = byFp(present, fp('pre2'));
    expect(pre2).toMatchObject({ kind: 'access_token', source: 'redis' });
    expect(pre2!.attrs).toMatchObject({ redisEvent: 'scan', key: { token: fp('pre2') } });
    const redisDue = await c.pexpiretime('oauth:access:pre2');
    // Local due = Redis due minus the clock offset (estimated to half a round trip).
    expect(Math.abs((pre2!.attrs.dueAt as number) - redisDue)).toBeLessThan(50);
    expect(pre2!.attrs.ttlMs).toBeGreaterThan(2_990_000);
    expect(pre2!.attrs.ttlMs).toBeLessThanOrEqual(3_000_000);
    const [nottl] = byFp(present, fp('pre-nottl'));
    expect(nottl).toMatchObject({ kind: 'session' });
    expect(nottl!.attrs.dueAt).toBeNull();
    expect(nottl!.attrs.ttlMs).toBeNull();

    const [baseline] = await records(h, 1, 'keyspace.baseline');
    expect(baseline!.attrs).toMatchObject({
      counts: { access_token: 2, session: 1, refresh_token: 0 },
      noTtl: { access_token: 0, session: 1 },
      pastDue: { access_token: 0, session: 0 },
      present: 3,
      unmatched: 1,
    });
    // The present records precede the baseline record that sums them up.
    expect(Math.max(...present.map((r) => r.seq))).toBeLessThan(baseline!.seq);

    // Issue #15 item 5: the pre-existing token without expiry is reported.
    const [opened] = await records(h, 1, 'finding.token_without_expiry');
    expect(opened).toMatchObject({ fingerprint: fp('pre-nottl'), attrs: { state: 'opened' } });

    // Issue #15 item 3: rewriting a pre-existing token is a rewrite, counted once.
    await c.set('oauth:access:pre1', 'v', 'EX', 3000);
    await c.set('session:new-nottl', 'v');
    await c.set('oauth:access:t2', 'v', 'EX', 3000);
    const written = await records(h, 3, 'token.written');
    expect(byFp(written, fp('pre1'))[0]!.attrs.rewrite).toBe(true);
    expect(byFp(written, fp('t2'))[0]!.attrs.rewrite).toBeUndefined();
    expect(byFp(written, fp('new-nottl'))[0]!.attrs.rewrite).toBeUndefined();
    expect(h.app.inventory.sizes()).toMatchObject({ access_token: 3, session: 2 });
    expect(await metric(h, 'tokenwatch_tokens_live', { kind: 'access_token' })).toBe(
      (await c.keys('oauth:access:*')).length,
    );
    expect(
      await metric(h, 'tokenwatch_token_events_total', { kind: 'access_token', event: 'present' }),
    ).toBe(2);

    await c.del('session:new-nottl');
    const findings = await records(h, 3, 'finding.token_without_expiry');
    const states = findings.map(
      (f) => `${f.fingerprint === fp('pre-nottl') ? 'pre' : 'new'}:${String(f.attrs.state)}`,
    );
    expect(states).toEqual(['pre:opened', 'new:opened', 'new:resolved']);
  });
});

describe('the baseline waits on the ledger rather than drop records', () => {
  it('records 6000 tokens through a queue of 1000 without dropping one', async () => {
    const c = redis.client();
    const p = c.pipeline();
    for (let i = 0; i < 6000; i++) p.set(`oauth:refresh:many${i}`, 'v', 'EX', 600);
    await p.exec();
    const dir = mkdtempSync(join(tmpdir(), 'tw-evidence-'));
    const config = parseConfig(
      `redis: { url: "${redis.url}", scanCount: 5000 }\n` +
        `audit: { path: ${join(dir, 'audit.db')}, maxPending: 1000, batchSize: 100 }\n` +
        `server: { port: 0 }\ntokens:\n  - kind: refresh_token\n    key: 'oauth:refresh:{token}'\n`,
    );
    const quiet = new Writable({ write: (_c, _e, cb) => cb() });
    const app = new TokenwatchApp({
      config,
      logger: createLogger('warn', quiet),
      defaultMetrics: false,
    });
    try {
      app.start();
      await app.whenReady(60_000);
      app.ledger.flush();
      expect(app.ledger.list({ type: 'token.present' })).toHaveLength(6000);
      expect(app.ledger.state().droppedTotal).toBe(0);
      expect(app.ledger.list({ type: 'keyspace.baseline' })[0]!.attrs.present).toBe(6000);
    } finally {
      await app.stop('test');
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('reconciliation records TTLs and the rules run on them', () => {
  it('flags a no-TTL token written while blind and resolves an over-policy TTL fixed while blind', async () => {
    h = startApp(redis.url);
    await h.app.whenReady();
    const fp = (s: string) => h!.app.fingerprinter.ofLatin1(s);
    const c = redis.client();
    await c.set('oauth:access:over', 'v', 'EX', 7200); // policy: 3600 s
    const [over] = await records(h, 1, 'finding.ttl_exceeds_policy');
    expect(over!.attrs.state).toBe('opened');
    await c
      .multi()
      .call('CLIENT', 'KILL', 'TYPE', 'pubsub')
      .set('session:blind-nottl', 'v')
      .set('oauth:access:blind-ttl', 'v', 'EX', 100)
      .expire('oauth:access:over', 60)
      .exec();
    const [gap] = await records(h, 1, 'keyspace.gap');
    expect(gap!.attrs).toMatchObject({
      appeared: { session: 1, access_token: 1 },
      ttl_changed: { access_token: 1 },
    });
    const appeared = await records(h, 2, 'token.appeared');
    const [nottl] = byFp(appeared, fp('blind-nottl'));
    expect(nottl!.attrs).toMatchObject({ dueAt: null, ttlMs: null, via: 'reconcile' });
    expect(nottl!.attrs.key).toEqual({ sid: fp('blind-nottl') });
    const [withTtl] = byFp(appeared, fp('blind-ttl'));
    expect(withTtl!.attrs.ttlMs).toBeGreaterThan(90_000);
    expect(withTtl!.attrs.ttlMs).toBeLessThanOrEqual(100_000);
    const [changed] = await records(h, 1, 'token.ttl_changed');
    expect(changed!.attrs.ttlMs).toBeGreaterThan(50_000);
    expect(changed!.attrs.ttlMs).toBeLessThanOrEqual(60_000);

    const [flagged] = await records(h, 1, 'finding.token_without_expiry');
    expect(flagged).toMatchObject({ fingerprint: fp('blind-nottl'), attrs: { state: 'opened' } });
    const policy = await records(h, 2, 'finding.ttl_exceeds_policy');
    expect(policy[1]).toMatchObject({ fingerprint: fp('over'), attrs: { state: 'resolved' } });
  });
});

describe('no finding rests on a timing guess', () => {
  it('SET EX from another process while the event loop is busy: every write carries its TTL', async () => {
    h = startApp(redis.url);
    await h.app.whenReady();
    const N = 20_000;
    // The event loop is blocked for 20 ms out of every 25 ms, so SET EX's two notifications
    // often arrive in different reads and different batches (the soak saw them 3-8 ms apart).
    const busy = setInterval(() => {
      const until = Date.now() + 20;
      while (Date.now() < until);
    }, 25);
    try {
      const cli = spawn('redis-cli', ['-p', String(redis.port), '--pipe'], {
        stdio: ['pipe', 'ignore', 'inherit'],
      });
      const exited = new Promise<number | null>((r) => cli.on('exit', r));
      let text = '';
      for (let i = 0; i < N; i++) text += `SET oauth:access:load${i} v EX 600\r\n`;
      cli.stdin.end(text);
      expect(await exited).toBe(0);
      await records(h, N, 'token.written');
    } finally {
      clearInterval(busy);
    }
    const written = h.app.ledger.list({ type: 'token.written' });
    expect(written).toHaveLength(N);
    const noTtl = written.filter((r) => typeof r.attrs.ttlMs !== 'number');
    expect(noTtl).toHaveLength(0);
    expect(h.app.ledger.list({ type: 'token.ttl_changed' })).toHaveLength(0);
    h.app.findings.tick();
    h.app.ledger.flush();
    expect(h.app.ledger.list({ type: 'finding.token_without_expiry' })).toHaveLength(0);
  });

  it('a SET without TTL is still flagged, and a later PERSIST too', async () => {
    h = startApp(redis.url);
    await h.app.whenReady();
    const c = redis.client();
    await c.set('oauth:access:plain', 'v');
    await c.set('oauth:access:keep', 'v', 'EX', 600);
    await c.set('oauth:access:keep', 'w', 'KEEPTTL');
    const written = await records(h, 3, 'token.written');
    expect(written.map((r) => r.attrs.ttlMs === null)).toEqual([true, false, false]);
    expect(written[2]!.attrs.rewrite).toBe(true);
    await c.persist('oauth:access:keep');
    const findings = await records(h, 2, 'finding.token_without_expiry');
    expect(findings.map((f) => f.attrs.state)).toEqual(['opened', 'opened']);
    // A separate EXPIRE right after a no-TTL write in an idle stream is a TTL change, not the
    // write's second half: the write is recorded without TTL and its finding resolves.
    await c.set('session:idle', 'v');
    await records(h, 4, 'token.written');
    await c.expire('session:idle', 60);
    const [changed] = await records(h, 1, 'token.ttl_changed');
    expect(changed!.attrs.ttlMs).toBeGreaterThan(50_000);
    const after = await records(h, 4, 'finding.token_without_expiry');
    expect(after.map((f) => f.attrs.state)).toEqual(['opened', 'opened', 'opened', 'resolved']);
  });
});

describe('expiry backlog is not churn, and live means valid', () => {
  it('keys long past due that a SCAN makes Redis delete are backlog; the gauges split live and past due', async () => {
    h = startApp(redis.url, { redis: ['expiryBacklogToleranceSeconds: 0.2'] });
    await h.app.whenReady();
    const c = redis.client();
    await c.call('DEBUG', 'SET-ACTIVE-EXPIRE', '0');
    const p = c.pipeline();
    for (let i = 0; i < 50; i++) p.set(`oauth:access:short${i}`, 'v', 'PX', 100);
    for (let i = 0; i < 10; i++) p.set(`oauth:access:long${i}`, 'v', 'EX', 600);
    await p.exec();
    await records(h, 60, 'token.written');
    await new Promise((r) => setTimeout(r, 600));
    expect(await metric(h, 'tokenwatch_tokens_live', { kind: 'access_token' })).toBe(10);
    expect(await metric(h, 'tokenwatch_tokens_past_due', { kind: 'access_token' })).toBe(50);
    // Someone else's SCAN: Redis deletes every long-due key it touches, all at once.
    const other = redis.client();
    let cursor = '0';
    do [cursor] = await other.scan(cursor, 'COUNT', 1000);
    while (cursor !== '0');
    const expired = await records(h, 50, 'token.expired');
    expect(expired.every((r) => r.attrs.backlog === true)).toBe(true);
    expect(expired.every((r) => (r.attrs.expiryLagMs as number) > 200)).toBe(true);
    expect(await metric(h, 'tokenwatch_expiry_backlog_total', { kind: 'access_token' })).toBe(50);
    expect(await metric(h, 'tokenwatch_tokens_past_due', { kind: 'access_token' })).toBe(0);
    expect(await metric(h, 'tokenwatch_tokens_live', { kind: 'access_token' })).toBe(10);
  });

  it('an expiry on time is not backlog', async () => {
    h = startApp(redis.url, { redis: ['expiryBacklogToleranceSeconds: 5'] });
    await h.app.whenReady();
    const c = redis.client();
    await c.set('oauth:access:soon', 'v', 'PX', 100);
    await new Promise((r) => setTimeout(r, 150));
    await c.get('oauth:access:soon');
    const [expired] = await records(h, 1, 'token.expired');
    expect(expired!.attrs.backlog).toBeUndefined();
    expect(await metric(h, 'tokenwatch_expiry_backlog_total', { kind: 'access_token' })).toBe(0);
  });
});

describe('a restart is reconciled like any other gap', () => {
  it('restores the inventory from the ledger and records what changed while tokenwatch was down', async () => {
    const c = redis.client();
    await c.set('oauth:access:pre1', 'v', 'EX', 3000);
    await c.set('oauth:access:pre2', 'v', 'EX', 3000);
    await c.set('session:pre-nottl', 'v');
    const first = startApp(redis.url);
    h = first;
    await first.app.whenReady();
    await c.set('oauth:access:pre1', 'v', 'EX', 3000);
    await c.set('session:new-nottl', 'v');
    await c.set('oauth:access:t2', 'v', 'EX', 3000);
    await records(first, 3, 'token.written');
    await first.app.stop('test');
    h = undefined;

    // While tokenwatch is down.
    await c.set('session:down-nottl', 'v');
    await c.del('oauth:access:pre1');
    await c.expire('oauth:access:t2', 100);

    const second = startApp(redis.url, { dir: first.dir });
    h = second;
    await second.app.whenReady();
    const fp = (s: string) => second.app.fingerprinter.ofLatin1(s);
    const gaps = await records(second, 1, 'keyspace.gap');
    const started = second.app.ledger.list({ type: 'system.started' }).at(-1)!.seq;
    expect(gaps).toHaveLength(1);
    const gap = gaps[0]!;
    expect(gap.seq).toBeGreaterThan(started);
    expect(gap.attrs).toMatchObject({
      reason: 'tokenwatch_stopped',
      appeared: { session: 1 },
      vanished: { access_token: 1 },
      ttl_changed: { access_token: 1 },
      present: 3,
    });
    expect(gap.attrs.unreconciled).toBeUndefined();
    const since = (r: AuditRecord) => r.seq > started;
    const present = second.app.ledger.list({ type: 'token.present' }).filter(since);
    expect(present.map((r) => r.fingerprint).sort()).toEqual(
      [fp('pre2'), fp('pre-nottl'), fp('new-nottl')].sort(),
    );
    const [appeared] = second.app.ledger.list({ type: 'token.appeared' }).filter(since);
    expect(appeared).toMatchObject({ fingerprint: fp('down-nottl'), attrs: { dueAt: null } });
    const [vanished] = second.app.ledger.list({ type: 'token.vanished' }).filter(since);
    expect(vanished!.fingerprint).toBe(fp('pre1'));
    const [changed] = second.app.ledger.list({ type: 'token.ttl_changed' }).filter(since);
    expect(changed!.fingerprint).toBe(fp('t2'));
    expect(changed!.attrs.ttlMs).toBeLessThanOrEqual(100_000);
    // No baseline record: the restart's reconciliation took its place.
    expect(second.app.ledger.list({ type: 'keyspace.baseline' }).filter(since)).toHaveLength(0);
    expect(second.app.inventory.sizes()).toMatchObject({ access_token: 2, session: 3 });

    // The rules cover what the restart found: the token written while down has no expiry.
    const opened = await records(second, 1, 'finding.token_without_expiry');
    expect(opened.filter(since).map((f) => f.fingerprint)).toContain(fp('down-nottl'));
    await c.del('session:new-nottl');
    await waitFor(
      () =>
        second.app.ledger
          .list({ type: 'finding.token_without_expiry' })
          .some(
            (f) => since(f) && f.fingerprint === fp('new-nottl') && f.attrs.state === 'resolved',
          ),
      10_000,
      'the finding of a deleted pre-restart token resolves',
    );
  });

  it('a token that expired while tokenwatch was down vanishes as expiry backlog', async () => {
    const redisLines = ['expiryBacklogToleranceSeconds: 0.2'];
    const first = startApp(redis.url, { redis: redisLines });
    h = first;
    await first.app.whenReady();
    const c = redis.client();
    await c.set('oauth:access:short', 'v', 'PX', 200);
    await c.set('oauth:access:long', 'v', 'EX', 600);
    await records(first, 2, 'token.written');
    await first.app.stop('test');
    h = undefined;
    await new Promise((r) => setTimeout(r, 600));
    expect(await c.get('oauth:access:short')).toBeNull(); // Redis deletes it while we are down
    const second = startApp(redis.url, { dir: first.dir, redis: redisLines });
    h = second;
    await second.app.whenReady();
    const [gap] = await records(second, 1, 'keyspace.gap');
    expect(gap!.attrs).toMatchObject({ vanished: { access_token: 1 }, present: 1 });
    const [vanished] = await records(second, 1, 'token.vanished');
    expect(vanished!.fingerprint).toBe(second.app.fingerprinter.ofLatin1('short'));
    expect(vanished!.attrs.backlog).toBe(true);
    expect(await metric(second, 'tokenwatch_expiry_backlog_total', { kind: 'access_token' })).toBe(
      1,
    );
  });

  it('falls back to a plain baseline, saying so, when the previous run never finished its baseline', async () => {
    const c = redis.client();
    await c.set('oauth:access:x', 'v', 'EX', 3000);
    // A run that stops before its watcher ever connected: no baseline in its records.
    const first = startApp('redis://127.0.0.1:1');
    h = first;
    await first.app.stop('test');
    const second = startApp(redis.url, { dir: first.dir });
    h = second;
    await second.app.whenReady();
    const [gap] = await records(second, 1, 'keyspace.gap');
    expect(gap!.attrs.unreconciled).toMatch(/baseline/);
    const [baseline] = await records(second, 1, 'keyspace.baseline');
    expect(baseline!.attrs.present).toBe(1);
  });
});
