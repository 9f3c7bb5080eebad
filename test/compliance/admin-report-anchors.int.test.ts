import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeKeyPair } from '../../src/audit/signing-keys.js';
import type { Soc2Report } from '../../src/compliance/report-types.js';
import { startApp, type Harness } from '../helpers/app-harness.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';

/**
 * The admin API's SOC 2 report states its integrity anchors like `tokenwatch verify`: anchored
 * only when the signing key and the checkpoint log are not beside the database.
 */
let redis: RedisServer;
const cleanups: (() => Promise<void> | void)[] = [];
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  while (cleanups.length) await cleanups.pop()!();
  await redis.stop();
});

async function reportOf(h: Harness): Promise<Soc2Report> {
  await h.app.whenReady();
  const from = new Date(Date.now() - 60_000).toISOString();
  const to = new Date(Date.now() + 1000).toISOString();
  const res = await h.app.http.inject({
    url: `/v1/reports/soc2?from=${from}&to=${to}&format=json`,
  });
  expect(res.statusCode, res.body).toBe(200);
  return JSON.parse(res.body) as Soc2Report;
}

describe('admin report integrity anchors', () => {
  it('is unanchored with the key and log beside the database', async () => {
    const h = startApp(redis.url);
    cleanups.push(() => h.stop());
    h.app.start();
    const r = await reportOf(h);
    expect(r.integrity.anchored).toBe(false);
    expect(r.integrity.anchors.join('\n')).toMatch(/beside the database/);
  });

  it('is anchored with the key from elsewhere and the external checkpoint log', async () => {
    const outside = mkdtempSync(join(tmpdir(), 'tw-anchors-'));
    cleanups.push(() => rmSync(outside, { recursive: true, force: true }));
    const keys = writeKeyPair(join(outside, 'keys'));
    const log = join(outside, 'worm', 'checkpoints.jsonl');
    const h = startApp(redis.url, {
      env: { TOKENWATCH_SIGNING_KEY: keys.privatePath, TOKENWATCH_CHECKPOINT_LOG: log },
    });
    cleanups.push(() => h.stop());
    h.app.start();
    const r = await reportOf(h);
    expect(r.integrity.anchors.join('\n')).toContain(log);
    expect(r.integrity.anchors.join('\n')).toContain(keys.privatePath);
    expect(r.integrity.anchored).toBe(true);
  });
});
