import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { freePort, startRedis, type RedisServer } from '../helpers/redis-server.js';
import { startApp, waitFor, type Harness } from '../helpers/app-harness.js';
import { startCluster } from '../helpers/redis-cluster.js';
import {
  countClusterKinds,
  countKinds,
  diff,
  ledgerCounts,
  report,
  startLoad,
  verifyBeside,
  type Offered,
} from './fault-harness.js';

/**
 * Fault-injection suite (`npm run test:faults`): each fault under a steady token load from a
 * separate process, then the audit ledger must verify and the live inventory must equal Redis,
 * per kind, exactly. Each fault adds a row to test-artifacts/faults.md.
 */

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});
afterAll(() => undefined);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function redisFor(args: string[] = []): Promise<RedisServer> {
  const r = await startRedis({ args });
  cleanups.push(() => r.stop());
  return r;
}

function appFor(r: RedisServer, o: Parameters<typeof startApp>[1] = {}): Harness {
  const h = startApp(r.url, {
    ...o,
    redis: ['flushCheckIntervalSeconds: 0.2', ...(o.redis ?? [])],
  });
  cleanups.push(() => h.stop());
  return h;
}

/** Stop the load, let short TTLs run out, and wait until the inventory equals Redis exactly. */
async function settleAndCompare(h: Harness, r: RedisServer, load: { stop(): Promise<Offered> }) {
  const offered = await load.stop();
  await sleep(800); // PX 300 sessions expire
  const c = r.client();
  let last = -1;
  await waitFor(
    async () => {
      await h.app.settle();
      const redis = await countKinds(c);
      const inv = h.app.inventory.sizes();
      last = diff(redis, {
        access_token: inv.access_token ?? 0,
        refresh_token: inv.refresh_token ?? 0,
        session: inv.session ?? 0,
      });
      return last === 0;
    },
    20_000,
    'inventory equals Redis',
  ).catch(() => undefined);
  return { offered, finalDiff: last };
}

/** Verify the ledger file, count its records, add the report row, and assert nothing was lost. */
async function conclude(name: string, dbPath: string, offered: Offered, finalDiff: number) {
  const v = await verifyBeside(dbPath);
  const counts = ledgerCounts(dbPath);
  report({
    fault: name,
    offered,
    observedLive: counts.live,
    recovered: counts.recovered,
    gaps: counts.gaps,
    finalDiff,
    verify: v.ok ? 'ok' : v.problems.map((p) => p.class).join(','),
  });
  expect(v.problems).toEqual([]);
  expect(finalDiff).toBe(0);
  return { counts, verify: v };
}

async function finish(
  name: string,
  h: Harness,
  r: RedisServer,
  load: { stop(): Promise<Offered> },
) {
  const { offered, finalDiff } = await settleAndCompare(h, r, load);
  await h.app.stop('test');
  const { counts, verify: v } = await conclude(name, h.dbPath, offered, finalDiff);
  expect(v.ok).toBe(true);
  return { offered, counts, verify: v };
}

describe('fault injection under steady load', () => {
  it('subscriber killed repeatedly (CLIENT KILL TYPE pubsub)', async () => {
    const r = await redisFor();
    const h = appFor(r);
    await h.app.whenReady();
    const load = await startLoad({ port: r.port });
    const c = r.client();
    for (let i = 0; i < 5; i++) {
      await sleep(400);
      await c.call('CLIENT', 'KILL', 'TYPE', 'pubsub');
    }
    await sleep(500);
    const { counts } = await finish('subscriber killed x5', h, r, load);
    expect(counts.gaps).toBeGreaterThanOrEqual(1);
  });

  it('slow consumer cut off by a tiny pubsub output buffer (the silent-loss case)', async () => {
    const r = await redisFor(['--client-output-buffer-limit', 'pubsub 32kb 16kb 1']);
    const h = appFor(r);
    await h.app.whenReady();
    const load = await startLoad({ port: r.port }, 2000);
    // Make tokenwatch a slow reader: block its event loop so Redis' buffer for it overflows.
    for (let i = 0; i < 4; i++) {
      await sleep(150);
      const until = Date.now() + 400;
      while (Date.now() < until) {
        /* busy: the subscriber socket is not read */
      }
    }
    await waitFor(
      () => h.app.ledger.list({ type: 'keyspace.gap' }).length > 0 || (h.app.ledger.flush(), false),
      15_000,
      'gap detected',
    );
    const { counts } = await finish('slow consumer dropped by Redis', h, r, load);
    expect(counts.gaps).toBeGreaterThanOrEqual(1);
  });

  it('redis-server restarted (AOF) mid-load', async () => {
    const r = await redisFor(['--appendonly', 'yes', '--appendfsync', 'always']);
    const h = appFor(r);
    await h.app.whenReady();
    const load = await startLoad({ port: r.port });
    await sleep(800);
    await r.halt();
    await sleep(300);
    await r.restart();
    await waitFor(() => h.app.notReadyReasons().length === 0, 20_000, 'ready after restart');
    await sleep(500);
    const { counts } = await finish('redis restarted (AOF)', h, r, load);
    expect(counts.gaps).toBeGreaterThanOrEqual(1);
    const c = r.client();
    const [, flags] = (await c.config('GET', 'notify-keyspace-events')) as [string, string];
    expect(flags).toContain('E'); // re-enabled after the restart forgot it
  });

  it('FLUSHDB and FLUSHALL mid-load: detected as mass invalidation', async () => {
    const r = await redisFor();
    const h = appFor(r);
    await h.app.whenReady();
    const load = await startLoad({ port: r.port });
    const c = r.client();
    await sleep(600);
    await c.flushdb();
    await sleep(600);
    await c.flushall();
    await sleep(600);
    const { counts } = await finish('FLUSHDB + FLUSHALL', h, r, load);
    expect(counts.gaps).toBeGreaterThanOrEqual(2);
  });

  it('ledger disk full (max_page_count) then space restored', async () => {
    const r = await redisFor();
    const h = appFor(r);
    await h.app.whenReady();
    const load = await startLoad({ port: r.port });
    await sleep(300);
    h.app.ledger.flush();
    const pages = h.app.ledger.db.pragma('page_count', { simple: true }) as number;
    h.app.ledger.pragma(`max_page_count = ${pages}`);
    await waitFor(() => h.app.ledger.degraded, 10_000, 'degraded');
    expect(h.app.notReadyReasons().join(' ')).toMatch(/audit ledger cannot write/);
    await sleep(1000);
    h.app.ledger.pragma('max_page_count = 1073741823');
    await waitFor(() => !h.app.ledger.degraded, 10_000, 'recovered');
    const { verify } = await finish('ledger disk full', h, r, load);
    expect(verify.degraded.windows).toBeGreaterThanOrEqual(1);
  });

  it('clock stepped backwards on the tokenwatch side: seq stays authoritative', async () => {
    const r = await redisFor();
    let offset = 0;
    const h = appFor(r, { now: () => Date.now() - offset });
    await h.app.whenReady();
    const load = await startLoad({ port: r.port });
    await sleep(600);
    offset = 3_600_000; // one hour back
    await sleep(800);
    const { verify } = await finish('clock step back 1 h', h, r, load);
    expect(verify.clock.regressions + verify.clock.flagged).toBeGreaterThan(0);
  });

  it('tokenwatch SIGKILLed mid-load and restarted', async () => {
    const r = await redisFor();
    const dir = mkdtempSync(join(tmpdir(), 'tw-kill-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const db = join(dir, 'audit.db');
    const port = await freePort();
    const cli = join(import.meta.dirname, '..', '..', 'dist', 'cli.js');
    const serve = () =>
      spawn(process.execPath, [cli, 'serve'], {
        env: {
          ...process.env,
          TOKENWATCH_REDIS_URL: r.url,
          TOKENWATCH_PORT: String(port),
          TOKENWATCH_AUDIT_PATH: db,
          TOKENWATCH_LOG_LEVEL: 'warn',
        },
        stdio: 'ignore',
      });
    const ready = () =>
      waitFor(
        async () => {
          try {
            return (await fetch(`http://127.0.0.1:${port}/readyz`)).status === 200;
          } catch {
            return false;
          }
        },
        20_000,
        'readyz',
      );
    let child = serve();
    await ready();
    const load = await startLoad({ port: r.port });
    await sleep(800);
    child.kill('SIGKILL');
    await new Promise((res) => child.once('exit', res));
    await sleep(500); // blind: tokenwatch is down while the load goes on
    child = serve();
    cleanups.push(() => void child.kill('SIGKILL'));
    await ready();
    await sleep(300);
    const offered = await load.stop();
    await sleep(800);
    const c = r.client();
    let finalDiff = -1;
    await waitFor(
      async () => {
        const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
        const live = (kind: string) =>
          Number(
            new RegExp(`tokenwatch_tokens_live\\{kind="${kind}"\\} (\\d+)`).exec(text)?.[1] ?? -1,
          );
        finalDiff = diff(await countKinds(c), {
          access_token: live('access_token'),
          refresh_token: live('refresh_token'),
          session: live('session'),
        });
        return finalDiff === 0;
      },
      20_000,
      'inventory equals Redis',
    ).catch(() => undefined);
    const exited = new Promise((res) => child.once('exit', res));
    child.kill('SIGTERM');
    await exited;
    await conclude('tokenwatch SIGKILL + restart', db, offered, finalDiff);
    const dbh = (await import('../../src/audit/query.js')).openReadOnly(db);
    const gaps = (await import('../../src/audit/query.js')).listRecords(dbh, {
      type: 'keyspace.gap',
    });
    dbh.close();
    expect(gaps.some((g) => g.attrs.reason === 'tokenwatch_crashed')).toBe(true);
  });

  it('cluster master killed mid-load: replica promoted, watcher moves, nothing missed', async () => {
    const cluster = await startCluster(3, 1);
    cleanups.push(() => cluster.stop());
    const h = startApp('redis://127.0.0.1:1', {
      redis: [cluster.watchConfig()],
    });
    cleanups.push(() => h.stop());
    await h.app.whenReady(30_000);
    const load = await startLoad({ cluster: cluster.seeds });
    await sleep(600);
    const victim = (await cluster.masters())[0]!;
    await cluster.nodes.find((n) => n.port === victim.port)!.halt(true);
    await waitFor(() => cluster.failedOver(victim.port), 20_000, 'promotion');
    await sleep(800);
    const offered = await load.stop();
    await sleep(800);
    let finalDiff = -1;
    await waitFor(
      async () => {
        await h.app.settle();
        const inv = h.app.inventory.sizes();
        const ports = (await cluster.masters()).map((m) => m.port);
        finalDiff = diff(await countClusterKinds(ports), {
          access_token: inv.access_token ?? 0,
          refresh_token: inv.refresh_token ?? 0,
          session: inv.session ?? 0,
        });
        return finalDiff === 0;
      },
      30_000,
      'inventory equals Redis',
    ).catch(() => undefined);
    if (finalDiff !== 0) {
      // Say where the difference sits: tokens per kind and node index, Redis, and the gaps.
      const byNode: Record<string, number> = {};
      for (const k of ['access_token', 'refresh_token', 'session']) {
        for (const [, e] of h.app.inventory.entries(k))
          byNode[`${k}@${e.node}`] = (byNode[`${k}@${e.node}`] ?? 0) + 1;
      }
      const ports = (await cluster.masters()).map((m) => m.port);
      const gaps = h.app.ledger
        .list({ type: 'keyspace.gap' })
        .map((g) => [g.attrs.node, g.attrs.reason, g.attrs.vanished, g.attrs.appeared]);
      const missing: unknown[] = [];
      for (const port of ports) {
        const node = new Redis({ port });
        let cursor = '0';
        do {
          const [next, keys] = await node.scan(cursor, 'COUNT', 1000);
          cursor = next;
          for (const key of keys) {
            const c = h.app.rules.classify(Buffer.from(key).toString('latin1'));
            if (c && !h.app.inventory.get(c.kind, c.fingerprint)) {
              const history = h.app.ledger
                .list({ type: 'token.*' })
                .filter((r) => r.fingerprint === c.fingerprint)
                .map((r) => [r.seq, r.time, r.type, r.attrs.node, r.attrs.redisEvent, r.attrs.via]);
              missing.push({ key, port, ttl: await node.pttl(key), history });
            }
          }
        } while (cursor !== '0');
        node.disconnect();
      }
      process.stderr.write(
        `cluster fault diagnosis: ${JSON.stringify({ byNode, redis: await countClusterKinds(ports), gaps, missing })}\n`,
      );
    }
    await h.app.stop('test');
    await conclude('cluster master killed', h.dbPath, offered, finalDiff);
  }, 90_000);
});
