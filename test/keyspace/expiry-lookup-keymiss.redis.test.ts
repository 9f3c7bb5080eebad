import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { pino, type Logger } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Fingerprinter } from '../../src/audit/fingerprint.js';
import { tokenRuleSchema } from '../../src/config/schema.js';
import { KeyEventApplier } from '../../src/keyspace/event-applier.js';
import { Inventory } from '../../src/keyspace/inventory.js';
import type { WatcherSink } from '../../src/keyspace/node-watcher.js';
import { TokenRules } from '../../src/keyspace/token-rules.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';
import { waitFor } from '../helpers/app-harness.js';

/**
 * Issue #21: with metrics.keyMisses on, tokenwatch's own expiry look-up of a token deleted
 * between its notification and the look-up must not publish `keymiss`, or it is counted as a
 * client's miss of that token (tokenwatch_token_lookups_total{result="miss"}).
 */

let redis: RedisServer;

beforeAll(async () => {
  redis = await startRedis({ notify: 'Em' });
});
afterAll(async () => {
  await redis.stop();
});

function applier(
  quietLookups: boolean,
  commands: Redis = redis.client(),
  logger: Logger = pino({ level: 'silent' }),
): KeyEventApplier {
  const f = new Fingerprinter([{ id: 'k1', key: randomBytes(32) }]);
  const rules = new TokenRules(
    [tokenRuleSchema.parse({ kind: 'session', key: 'session:{sid}' })],
    f,
  );
  const sink: WatcherSink = {
    token: () => undefined,
    unmatched: () => undefined,
    baseline: () => undefined,
    gap: () => undefined,
    status: () => undefined,
    hitMiss: () => undefined,
  };
  return new KeyEventApplier({
    nodeIndex: 0,
    label: 'n:1',
    db: 0,
    commands,
    rules,
    inventory: new Inventory(['session'], f.prefix),
    sink,
    maxKeyBytes: 1024,
    expiryBacklogToleranceMs: 2000,
    logger,
    quietLookups,
  });
}

/** The keys of the `keymiss` notifications published while `run` runs, in order. */
async function keymissesDuring(run: () => Promise<void>): Promise<string[]> {
  const sub = redis.client();
  const seen: string[] = [];
  sub.on('message', (_channel: string, key: string) => seen.push(key));
  await sub.subscribe('__keyevent@0__:keymiss');
  await run();
  // Redis publishes in command order: once this marker's keymiss is in, every earlier one is.
  const marker = `marker:${randomBytes(6).toString('hex')}`;
  await redis.client().get(marker);
  await waitFor(() => seen.includes(marker), 10_000, 'the marker keymiss');
  sub.disconnect();
  return seen.filter((k) => k !== marker);
}

describe('expiry look-ups and keymiss', () => {
  it('quiet look-ups (keyMisses on) publish no keymiss for gone keys and reply as PEXPIRETIME', async () => {
    const c = redis.client();
    const tag = randomBytes(4).toString('hex');
    await c.set(`session:live-${tag}`, 'v', 'EX', 600);
    await c.set(`session:due-${tag}`, 'v', 'PX', 1);
    await new Promise((r) => setTimeout(r, 20)); // past due, not yet expired by the active cycle
    const a = applier(true);
    let replies: number[] = [];
    const misses = await keymissesDuring(async () => {
      replies = await a.expiries(
        [`session:gone-${tag}`, `session:live-${tag}`, `session:due-${tag}`].map((k) =>
          Buffer.from(k),
        ),
      );
    });
    expect(misses).toEqual([]);
    expect(replies[0]).toBe(-2);
    expect(replies[1]).toBeGreaterThan(Date.now());
    expect(replies[2]).toBe(-2);
  });

  it('plain look-ups (keyMisses off) do publish it: the case the quiet script avoids', async () => {
    const tag = randomBytes(4).toString('hex');
    const a = applier(false);
    let replies: number[] = [];
    const misses = await keymissesDuring(async () => {
      replies = await a.expiries([Buffer.from(`session:gone-${tag}`)]);
    });
    expect(misses).toEqual([`session:gone-${tag}`]);
    expect(replies).toEqual([-2]);
  });

  it('falls back to the plain script, with a warning, where the ACL forbids OBJECT ENCODING', async () => {
    const admin = redis.client();
    await admin.call(
      'ACL',
      'SETUSER',
      'tw-noobject',
      'on',
      '>pw-noobject',
      '%R~*',
      '-@all',
      '+evalsha',
      '+script|load',
      '+pexpiretime',
    );
    const tag = randomBytes(4).toString('hex');
    await admin.set(`session:live-${tag}`, 'v', 'EX', 600);
    const commands = new Redis({
      port: redis.port,
      host: '127.0.0.1',
      username: 'tw-noobject',
      password: 'pw-noobject',
    });
    const lines: string[] = [];
    const logger = pino({ level: 'info' }, { write: (l: string) => void lines.push(l) });
    try {
      const a = applier(true, commands, logger);
      const replies = await a.expiries(
        [`session:live-${tag}`, `session:gone-${tag}`].map((k) => Buffer.from(k)),
      );
      expect(replies[0]).toBeGreaterThan(Date.now());
      expect(replies[1]).toBe(-2);
      expect(lines.join('')).toContain('+object|encoding');
      expect(lines.join('')).not.toContain('PEXPIRETIME pipelines');
    } finally {
      commands.disconnect();
      await admin.call('ACL', 'DELUSER', 'tw-noobject');
    }
  });
});
