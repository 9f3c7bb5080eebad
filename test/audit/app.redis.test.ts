import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TokenwatchApp } from '../../src/app.js';
import { readCheckpointLog } from '../../src/audit/checkpoint-log.js';
import { loadTrustedKey } from '../../src/audit/signing-keys.js';
import { verifyLedger } from '../../src/audit/verify.js';
import { parseConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/logger.js';
import { DEFAULT_TOKEN_RULES } from '../helpers/app-harness.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';

let redis: RedisServer;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis.stop();
});

function build(
  dir: string,
  o: { audit?: string; now?: () => number } = {},
): { app: TokenwatchApp; logs: () => string } {
  const config = parseConfig(`
redis:
  url: ${redis.url}
audit:
  path: ${join(dir, 'audit.db')}
  maxBatchDelayMs: 5${o.audit ?? ''}
server:
  port: 0
log:
  level: info
${DEFAULT_TOKEN_RULES}`);
  let text = '';
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      text += chunk.toString();
      cb();
    },
  });
  const app = new TokenwatchApp({
    config,
    logger: createLogger('info', sink),
    defaultMetrics: false,
    ...(o.now ? { now: o.now } : {}),
  });
  return { app, logs: () => text };
}

function verifyDir(dir: string) {
  return verifyLedger({
    dbPath: join(dir, 'audit.db'),
    checkpointLog: join(dir, 'checkpoints.jsonl'),
    trusted: [loadTrustedKey(join(dir, 'signing.pub'))],
  });
}

describe('TokenwatchApp audit integrity wiring', () => {
  it('signs checkpoints at start and shutdown, warns about key and log beside the database, verifies', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tw-app-audit-'));
    try {
      const { app, logs } = build(dir);
      app.start();
      await app.whenReady();
      await app.stop('test');
      expect(logs()).toMatch(/checkpoint signing key and\/or checkpoint log beside the database/);
      const reasons = readCheckpointLog(join(dir, 'checkpoints.jsonl')).entries.map(
        (c) => c.reason,
      );
      expect(reasons[0]).toBe('start');
      expect(reasons.at(-1)).toBe('shutdown');
      const report = await verifyDir(dir);
      expect(report.problems).toEqual([]);
      expect(report.unsealed).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('with audit.archive.afterDays, archives at start what aged, into archive/ beside the database', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tw-app-archive-'));
    try {
      let t = Date.now() - 3 * 86_400_000;
      const now = () => t;
      const first = build(dir, { now });
      first.app.start();
      await first.app.whenReady();
      await first.app.stop('test');
      t = Date.now(); // three days later: the first run's segments are older than one day
      const second = build(dir, { now, audit: '\n  archive:\n    afterDays: 1' });
      second.app.start();
      await second.app.whenReady();
      await second.app.stop('test');
      const archived = await verifyLedger({
        dbPath: join(dir, 'audit.db'),
        checkpointLog: join(dir, 'checkpoints.jsonl'),
        trusted: [loadTrustedKey(join(dir, 'signing.pub'))],
        archiveDir: join(dir, 'archive'),
      });
      expect(archived.problems).toEqual([]);
      expect(archived.archives).toEqual([expect.objectContaining({ fromSeq: 1, checked: true })]);
      expect(archived.archivedRecords).toBeGreaterThan(0);
      expect(second.logs()).toMatch(/audit archive: moved sealed segments to an archive file/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('answers /readyz 503 while the ledger cannot write and 200 once it can again', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tw-app-audit-'));
    try {
      const { app } = build(dir);
      app.start();
      await app.whenReady();
      const pages = app.ledger.db.pragma('page_count', { simple: true }) as number;
      app.ledger.pragma(`max_page_count = ${pages}`);
      for (let i = 0; i < 2000; i++) {
        app.ledger.append({
          time: app.now(),
          source: 'admin',
          type: 'test.filler',
          attrs: { pad: 'x'.repeat(500) },
        });
      }
      expect(app.ledger.flush()).toBe(false);
      const down = await app.http.inject({ method: 'GET', url: '/readyz' });
      expect(down.statusCode).toBe(503);
      expect(down.body).toMatch(/audit ledger cannot write/);
      app.ledger.pragma('max_page_count = 1073741823');
      expect(app.ledger.flush()).toBe(true);
      expect((await app.http.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(200);
      await app.stop('test');
      const report = await verifyDir(dir);
      expect(report.problems).toEqual([]);
      expect(report.degraded.windows).toBe(1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses to start on a database older than its checkpoint log (restored backup)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tw-app-audit-'));
    try {
      const first = build(dir);
      first.app.start();
      await first.app.whenReady();
      await first.app.stop('test');
      copyFileSync(join(dir, 'audit.db'), join(dir, 'backup.db'));
      const second = build(dir);
      second.app.start();
      await second.app.whenReady();
      await second.app.stop('test');
      copyFileSync(join(dir, 'backup.db'), join(dir, 'audit.db'));
      expect(() => build(dir)).toThrow(
        expect.objectContaining({ code: 'ERR_LEDGER_INTEGRITY' }) as Error,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
