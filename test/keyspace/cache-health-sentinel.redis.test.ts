import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, startRedis, type RedisServer } from '../helpers/redis-server.js';
import { startApp, waitFor, type Harness } from '../helpers/app-harness.js';

/** Issue #21 on Sentinel: misses and a MONITOR window on the master Sentinel names. */

let master: RedisServer;
let sentinel: ChildProcess | undefined;
let dir: string;
let h: Harness | undefined;

beforeAll(async () => {
  master = await startRedis();
  const sentinelPort = await freePort();
  dir = mkdtempSync(join(tmpdir(), 'tw-sentinel-ch-'));
  const conf = join(dir, 'sentinel.conf');
  writeFileSync(
    conf,
    [
      `port ${sentinelPort}`,
      'bind 127.0.0.1',
      `dir ${dir}`,
      `sentinel monitor tw 127.0.0.1 ${master.port} 1`,
      '',
    ].join('\n'),
  );
  sentinel = spawn('redis-server', [conf, '--sentinel'], { stdio: 'ignore' });
  const s = new Redis({ port: sentinelPort, lazyConnect: true, retryStrategy: () => 100 });
  s.on('error', () => undefined);
  try {
    await waitFor(
      async () => {
        try {
          if (s.status !== 'ready') await s.connect().catch(() => undefined);
          const addr = (await s.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', 'tw')) as string[];
          return addr?.[1] === String(master.port);
        } catch {
          return false;
        }
      },
      20_000,
      'sentinel names the master',
    );
  } finally {
    s.disconnect();
  }
  h = startApp('redis://127.0.0.1:1', {
    redis: [`sentinel: { name: tw, sentinels: ["127.0.0.1:${sentinelPort}"] }`],
    yaml: 'metrics:\n  keyMisses: true\n  readSampling: { windowMs: 800, everySeconds: 3600 }\n',
  });
  await h.app.whenReady(30_000);
}, 60_000);

afterAll(async () => {
  await h?.stop();
  sentinel?.kill('SIGKILL');
  await master?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('cache health through Sentinel', () => {
  it('counts misses and closes a sampling window on the master', async () => {
    const app = (h as Harness).app;
    expect(app.watchers.map((w) => w.label)).toEqual(['sentinel:tw']);
    const c = master.client();
    for (let i = 0; i < 4; i++) await c.set(`oauth:access:s${i}`, 'v', 'EX', 600);
    let stop = false;
    const load = (async () => {
      for (let r = 0; !stop; r++) {
        const p = c.pipeline();
        for (let i = 0; i < 4; i++) p.get(`oauth:access:s${i}`);
        p.get(`oauth:access:gone${r}`);
        await p.exec();
      }
    })();
    const w = await app.cacheHealth.sampler('sentinel:tw')?.sample();
    stop = true;
    await load;
    expect(w).toBeDefined();
    const n = w?.reads.access_token ?? 0;
    expect(n).toBeGreaterThan(20);
    // 4 hits : 1 miss; only the round cut at each edge of the window skews it.
    const ratio = (n - (w?.misses.access_token ?? 0)) / n;
    expect(Math.abs(ratio - 0.8)).toBeLessThanOrEqual(Math.max(3 * Math.sqrt(0.16 / n), 5 / n));
    const metric = await app.metrics.registry.getSingleMetric('tokenwatch_token_hit_ratio')?.get();
    expect(metric?.values.find((v) => v.labels.kind === 'access_token')?.value).toBe(ratio);
    const misses = await app.metrics.registry
      .getSingleMetric('tokenwatch_token_lookups_total')
      ?.get();
    expect(
      misses?.values.find((v) => v.labels.kind === 'access_token' && v.labels.result === 'miss')
        ?.value,
    ).toBeGreaterThanOrEqual(w?.misses.access_token ?? 0);
  });
});
