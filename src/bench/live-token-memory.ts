/**
 * Bytes per live token of the whole service under churn (issue #16, "memory is bounded and
 * proportional"): `node --expose-gc dist/bench/live-token-memory.js [--live N,...]
 * [--rounds R] [--churn share]`. For each N: a real redis-server and an in-process
 * TokenwatchApp, N tokens written (SET EX 3600), then R rounds that each delete `share` x N of
 * the oldest and write as many new ones (the live count stays N, the ended-token memory fills).
 * `--seconds S --rate R` instead churns R tokens/s for S seconds, as the soak drill does.
 * Samples after each phase: settled heap and RSS (two full GCs) and the figures a user sees
 * without a GC (`*NoGc`), with the per-token structure sizes. Prints JSON lines.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { parseArgs } from 'node:util';
import { TokenwatchApp } from '../app.js';
import { parseConfig } from '../config/load.js';
import { createLogger } from '../logger.js';
import { startBenchRedis } from './bench-redis.js';
import { applyServeRuntime } from './serve-runtime.js';

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc');
applyServeRuntime(); // as serve does (TW_HEAP_GROWTH=null|N to compare)

const { values } = parseArgs({
  options: {
    live: { type: 'string', default: '100000,500000' },
    rounds: { type: 'string', default: '6' },
    churn: { type: 'string', default: '0.5' },
    /** Steady mode: churn `rate` tokens/s (DEL of the oldest + SET of a new one) for `seconds`. */
    seconds: { type: 'string', default: '0' },
    rate: { type: 'string', default: '400' },
  },
});
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const MB = (b: number) => Math.round(b / 1e5) / 10;

function settledHeap(): NodeJS.MemoryUsage {
  gc!();
  gc!();
  return process.memoryUsage();
}

async function until(cond: () => boolean, maxMs = 600_000): Promise<void> {
  const deadline = Date.now() + maxMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('timed out waiting for the service');
    await sleep(100);
  }
}

async function run(live: number, rounds: number, churnShare: number): Promise<void> {
  const redis = await startBenchRedis();
  const dir = mkdtempSync(join(tmpdir(), 'tw-bench-mem-'));
  const config = parseConfig(
    [
      `redis: { url: "${redis.url}" }`,
      `audit: { path: ${join(dir, 'audit.db')} }`,
      'server: { port: 0 }',
      'tokens:',
      '  - { kind: access_token, key: "oauth:access:{token}", maxTtlSeconds: 86400, joins: { tokenId: token } }',
      '',
    ].join('\n'),
  );
  const quiet = new Writable({ write: (_c, _e, cb) => cb() });
  const app = new TokenwatchApp({
    config,
    logger: createLogger('warn', quiet),
    defaultMetrics: false,
  });
  app.start();
  await app.whenReady(60_000);
  const c = redis.client();
  const correlator = app.findings.correlator;
  const inv = () => app.inventory.size('access_token');
  const ended = () => correlator.stats().sizes.endedTokens;
  const base = settledHeap();

  const write = async (from: number, to: number, ttl: number, del?: [number, number]) => {
    for (let i = from; i < to; i += 1000) {
      const p = c.pipeline();
      if (del)
        for (let k = del[0] + i - from; k < Math.min(del[1], del[0] + i - from + 1000); k++)
          p.del(`oauth:access:t${k}`);
      for (let k = i; k < Math.min(to, i + 1000); k++) p.set(`oauth:access:t${k}`, 'v', 'EX', ttl);
      await p.exec();
    }
  };
  const sample = (phase: string, extra: Record<string, number> = {}) => {
    const raw = process.memoryUsage();
    const m = settledHeap();
    const s = correlator.stats().sizes;
    process.stdout.write(
      `${JSON.stringify({
        live,
        phase,
        inventory: inv(),
        correlatorLive: s.liveTokens,
        correlatorEnded: s.endedTokens,
        tokenIdIndex: s.tokenIdIndex,
        rssMB: MB(m.rss),
        rssNoGcMB: MB(raw.rss),
        heapMB: MB(m.heapUsed),
        heapNoGcMB: MB(raw.heapUsed),
        heapTotalMB: MB(m.heapTotal),
        externalMB: MB(m.external + m.arrayBuffers),
        heapPerLiveToken: Math.round((m.heapUsed - base.heapUsed) / Math.max(1, inv())),
        rssPerLiveToken: Math.round((m.rss - base.rss) / Math.max(1, inv())),
        ...extra,
      })}\n`,
    );
  };

  sample('empty');
  await write(0, live, 3600);
  await until(() => inv() === live && correlator.stats().sizes.liveTokens === live);
  await sleep(1000);
  sample('written');
  const seconds = Number(values.seconds);
  if (seconds > 0) {
    // Steady mode, as the soak drill: the live count stays at `live`, `rate` tokens end per second.
    const rate = Number(values.rate);
    const started = Date.now();
    let oldest = 0;
    let next = live;
    let lastSample = started;
    while (Date.now() - started < seconds * 1000) {
      const tick = Date.now();
      const n = Math.round(rate / 10);
      await write(next, next + n, 3600, [oldest, oldest + n]);
      oldest += n;
      next += n;
      if (Date.now() - lastSample >= 30_000) {
        lastSample = Date.now();
        sample(`t+${Math.round((lastSample - started) / 1000)}s`, { churned: oldest });
      }
      await sleep(Math.max(0, 100 - (Date.now() - tick)));
    }
    await app.stop('bench');
    await redis.stop();
    rmSync(dir, { recursive: true, force: true });
    return;
  }
  const per = Math.round(live * churnShare);
  let oldest = 0;
  let next = live;
  for (let r = 1; r <= rounds; r++) {
    const endedBefore = ended();
    await write(next, next + per, 3600, [oldest, oldest + per]);
    oldest += per;
    next += per;
    await until(() => inv() === live && ended() >= Math.min(endedBefore + per, 200_000));
    await sleep(1000);
    sample(`churn ${r}`, { churned: oldest });
  }
  await app.stop('bench');
  await redis.stop();
  rmSync(dir, { recursive: true, force: true });
}

for (const live of (values.live ?? '').split(',').map(Number)) {
  await run(live, Number(values.rounds), Number(values.churn));
}
