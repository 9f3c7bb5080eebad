import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';
import { startApp, waitFor, type Harness } from '../helpers/app-harness.js';

let redis: RedisServer;
let h: Harness | undefined;

const INDEXES = `
indexes:
  intervalSeconds: 3600
  rules:
    - name: user_sessions
      key: 'user:{sub}:sessions'
      kind: session
    - name: client_refresh
      key: 'client:{cid}:rts'
      kind: refresh_token
`;

beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis.stop();
});
afterEach(async () => {
  await h?.stop();
  h = undefined;
  const c = redis.client();
  await c.flushall();
  await c.config('SET', 'notify-keyspace-events', '');
  c.disconnect();
});

async function committed(hh: Harness, type: string, min: number): Promise<void> {
  await waitFor(
    async () => {
      await hh.app.settle();
      hh.app.ledger.flush();
      return hh.app.ledger.list({ type }).length >= min;
    },
    10_000,
    `${min} ${type} record(s)`,
  );
}

function findingRecords(hh: Harness) {
  hh.app.ledger.flush();
  return hh.app.ledger.list({ type: 'finding.orphaned_index_entries' });
}

describe('index entries that outlive their tokens', () => {
  it('finds orphans left by deleting tokens but not their index entries; cleaning resolves the finding', async () => {
    h = startApp(redis.url, { yaml: INDEXES });
    await h.app.whenReady();
    const c = redis.client();
    for (const s of ['sa1', 'sa2', 'sa3', 'sb1']) await c.hset(`session:${s}`, 'u', '1');
    for (const t of ['rt-1', 'rt-2']) await c.set(`oauth:refresh:${t}`, 'v', 'EX', 600);
    await c.sadd('user:alice:sessions', 'sa1', 'sa2', 'sa3');
    await c.sadd('user:bob:sessions', 'sb1');
    // Hash index: fields are token ids; values are whatever the app keeps (never read out).
    await c.hset('client:web:rts', 'rt-1', 'secret-value-1', 'rt-2', 'secret-value-2');
    await committed(h, 'token.written', 6);

    let r = await h.app.indexes.run();
    expect(r?.indexes.user_sessions).toMatchObject({ keys: 2, members: 4, orphans: 0 });
    expect(r?.indexes.client_refresh).toMatchObject({ keys: 1, members: 2, orphans: 0 });
    await h.app.settle();
    expect(
      h.app.findings.openFindings().filter((f) => f.rule === 'orphaned_index_entries'),
    ).toEqual([]);

    // The application deletes tokens (logout, revocation) but leaves their index entries.
    await c.del('session:sa2', 'session:sa3', 'oauth:refresh:rt-2');
    await committed(h, 'token.deleted', 3);
    r = await h.app.indexes.run();
    expect(r?.indexes.user_sessions).toMatchObject({
      members: 4,
      orphans: 2,
      keysWithOrphans: 1,
    });
    expect(r?.indexes.client_refresh).toMatchObject({ members: 2, orphans: 1 });
    const fp = (id: string) => h!.app.fingerprinter.ofLatin1(id);
    expect(new Set(r?.indexes.user_sessions?.fingerprints)).toEqual(
      new Set([fp('sa2'), fp('sa3')]),
    );
    expect(r?.indexes.client_refresh?.fingerprints).toEqual([fp('rt-2')]);
    const metrics = await h.app.metrics.registry.metrics();
    expect(metrics).toContain('tokenwatch_index_orphans{index="user_sessions"} 2');
    expect(metrics).toContain('tokenwatch_index_orphans{index="client_refresh"} 1');

    await waitFor(() => findingRecords(h!).length >= 2, 10_000, 'two opened findings');
    const open = h.app.findings.openFindings().filter((f) => f.rule === 'orphaned_index_entries');
    expect(open).toHaveLength(2);
    const sessions = open.find((f) => f.attributes.index === 'user_sessions');
    expect(sessions).toMatchObject({ criteria: ['CC6.2'], kind: 'session' });
    expect(sessions?.attributes.orphans).toBe(2);
    // Cites the reconciliation record as evidence.
    const recs = h.app.ledger.list({ type: 'keyspace.index_reconcile' });
    expect(sessions?.evidenceSeqs).toContain(recs.at(-1)?.seq);

    // Nothing raw: no member, no index key, no hash value in records or logs.
    const text = JSON.stringify(h.app.ledger.list({})) + h.logs();
    for (const raw of ['sa2', 'sa3', 'rt-2', 'alice', 'secret-value'])
      expect(text).not.toContain(raw);

    // Cleaning the index entries resolves the findings.
    await c.srem('user:alice:sessions', 'sa2', 'sa3');
    await c.hdel('client:web:rts', 'rt-2');
    r = await h.app.indexes.run();
    expect(r?.indexes.user_sessions?.orphans).toBe(0);
    expect(r?.indexes.client_refresh?.orphans).toBe(0);
    await waitFor(
      () => findingRecords(h!).filter((f) => f.attrs.state === 'resolved').length === 2,
      10_000,
      'two resolved findings',
    );
    expect(
      h.app.findings.openFindings().filter((f) => f.rule === 'orphaned_index_entries'),
    ).toEqual([]);
    expect(await h.app.metrics.registry.metrics()).toContain(
      'tokenwatch_index_orphans{index="user_sessions"} 0',
    );
  });

  it('does not report a token that exists in Redis although the inventory does not know it yet', async () => {
    h = startApp(redis.url, { yaml: INDEXES });
    await h.app.whenReady();
    const c = redis.client();
    await c.sadd('user:carol:sessions', 'sc1', 'sc-never');
    await c.hset('session:sc1', 'u', '1');
    // Judge before the write's notification can have been applied: OBJECT ENCODING confirms.
    h.app.inventory.delete('session', h.app.fingerprinter.ofLatin1('sc1'), 0);
    const r = await h.app.indexes.run();
    expect(r?.indexes.user_sessions).toMatchObject({ members: 2, orphans: 1 });
    expect(r?.indexes.user_sessions?.fingerprints).toEqual([
      h.app.fingerprinter.ofLatin1('sc-never'),
    ]);
  });

  it('reconciles the indexes again after a gap', async () => {
    h = startApp(redis.url, { yaml: INDEXES });
    await h.app.whenReady();
    const c = redis.client();
    await c.sadd('user:dave:sessions', 'sd-gone');
    const before = h.app.ledger.list({ type: 'keyspace.index_reconcile' }).length;
    await h.app.keyspace.markBlind('test', Date.now());
    await committed(h, 'keyspace.index_reconcile', before + 1);
    const rec = h.app.ledger.list({ type: 'keyspace.index_reconcile' }).at(-1);
    expect(rec?.attrs.reason).toBe('gap');
    expect(rec?.attrs.indexes).toMatchObject({ user_sessions: { orphans: 1 } });
  });
});
