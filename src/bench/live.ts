import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import type { Committed } from '../audit/record.js';
import { startTokenwatch, untilStable } from './app-under-test.js';
import { startBenchRedis } from './bench-redis.js';
import { runChild } from './run-child.js';
import { percentile, round } from './stats.js';

const RATE_CHILD = fileURLToPath(new URL('./rate-child.js', import.meta.url));

/** Offered rates tried in turn, lowest first; the run stops at the first that is not sustained. */
export const LIVE_STEPS = [2_500, 5_000, 10_000, 15_000, 20_000, 30_000, 40_000, 60_000, 80_000];

export interface LiveStep {
  offered: number;
  achieved: number;
  /** Notification received -> committed, token.written of this step (ms). */
  p99ms: number;
  maxms: number;
  committed: number;
  gaps: number;
  sustained: boolean;
}

export interface LiveResult {
  stepSeconds: number;
  /** What the load process reached against Redis, notifications on, subscriber connected. */
  redisPerSec: number;
  steps: LiveStep[];
  /** The highest offered rate tokenwatch sustained (0: not even the first). */
  tokenwatchPerSec: number;
}

/** `node rate-child.js`: SET EX at `rate` for `seconds`; resolves with what it sent. */
async function offer(port: number, rate: number, seconds: number, prefix: string) {
  const out = await runChild(RATE_CHILD, [String(port), String(rate), String(seconds), prefix]);
  return JSON.parse(out) as { sent: number; seconds: number };
}

/**
 * Scenario 1b (issue #19): the offered SET EX rate stepped up from a separate process while
 * tokenwatch runs. A step is sustained when the load reached 95 % of its offer, every write of
 * the step was committed with notification-to-commit lag p99 under 1 s, and no keyspace gap was
 * recorded. Beside it, in the same run, the rate the load process reaches against Redis alone
 * (notifications on, a bare subscriber connected): the ceiling of this machine's load path.
 */
export async function liveSteps(stepSeconds: number, steps = LIVE_STEPS): Promise<LiveResult> {
  const r0 = await startBenchRedis('Eg$xeh');
  const sub = new Redis({ port: r0.port });
  await sub.psubscribe('__keyevent@0__:*');
  const redis = await offer(r0.port, 10_000_000, stepSeconds, 'max');
  sub.disconnect();
  await r0.stop();
  const redisPerSec = round(redis.sent / redis.seconds);

  const r = await startBenchRedis();
  const tw = startTokenwatch(r.url);
  await tw.app.whenReady(60_000);
  let lags: number[] = [];
  let prefix = '';
  tw.app.onCommitted((batch: readonly Committed[]) => {
    const now = Date.now();
    for (const c of batch) {
      if (c.input.type !== 'token.written') continue;
      lags.push(now - c.input.time);
    }
  });
  const result: LiveStep[] = [];
  let best = 0;
  for (const rate of steps) {
    if (rate > redisPerSec) break;
    prefix = `s${rate}-`;
    lags = [];
    const gapsBefore = tw.app.ledger.list({ type: 'keyspace.gap' }).length;
    const load = await offer(r.port, rate, stepSeconds, prefix);
    // Whatever is still queued must commit too; a backlog that does not drain fails the step.
    await untilStable(() => lags.length, 1000, 60_000);
    tw.app.ledger.flush();
    const gaps = tw.app.ledger.list({ type: 'keyspace.gap' }).length - gapsBefore;
    const achieved = load.sent / load.seconds;
    const step: LiveStep = {
      offered: rate,
      achieved: round(achieved),
      p99ms: percentile(lags, 99),
      maxms: lags.reduce((m, v) => (v > m ? v : m), 0),
      committed: lags.length,
      gaps,
      sustained: false,
    };
    step.sustained =
      achieved >= 0.95 * rate && step.committed >= load.sent && step.p99ms < 1000 && gaps === 0;
    result.push(step);
    if (!step.sustained) break;
    best = rate;
  }
  await tw.close();
  await r.stop();
  return { stepSeconds, redisPerSec, steps: result, tokenwatchPerSec: best };
}
