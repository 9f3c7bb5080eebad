import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';

import { LedgerStore } from '../../src/audit/store/ledger-store.js';
import { SeenEvents, seenKey } from '../../src/providers/ingest/seen-events.js';

function ledgerDb(
  rows: [time: number, type: string, attrs: Record<string, unknown>][],
): Database.Database {
  const db = new Database(':memory:');
  db.exec('CREATE TABLE records (seq INTEGER PRIMARY KEY, time INTEGER, type TEXT, attrs TEXT)');
  const insert = db.prepare('INSERT INTO records (time, type, attrs) VALUES (?, ?, ?)');
  for (const [time, type, attrs] of rows) insert.run(time, type, JSON.stringify(attrs));
  return db;
}

describe('SeenEvents', () => {
  it('forgets the oldest keys beyond maxEntries, in constant time per add', () => {
    const seen = new SeenEvents({ windowMs: 1000, maxEntries: 1000 });
    const t = performance.now();
    for (let i = 0; i < 500_000; i++) seen.add(`k${i}`);
    expect(performance.now() - t).toBeLessThan(2000);
    expect(seen.size).toBe(1000);
    expect(seen.has('k499999')).toBe(true);
    expect(seen.has('k499000')).toBe(true);
    expect(seen.has('k498999')).toBe(false);
    seen.add('k499999'); // already there: nothing evicted
    expect(seen.has('k499000')).toBe(true);
  });

  it('rebuilds from provider records inside the window, newest kept when over the cap', () => {
    const now = 1_000_000;
    const db = ledgerDb([
      [now - 5000, 'provider.session_started', { provider: 'okta', eventId: 'too-old' }],
      [now - 900, 'provider.session_started', { provider: 'okta', eventId: 'a' }],
      [now - 800, 'token.written', { provider: 'okta', eventId: 'not-a-provider-record' }],
      [now - 700, 'provider.rejected', { provider: 'okta', reason: 'malformed' }],
      [now - 600, 'provider.token_revoked', { provider: 'auth0', eventId: 'b' }],
      [now - 500, 'provider.stream_verified', { provider: 'ssf', eventId: 'c' }],
      [now - 400, 'providers.other', { provider: 'okta', eventId: 'd' }],
    ]);
    const seen = new SeenEvents({ windowMs: 1000, maxEntries: 1000 });
    seen.rebuild(new LedgerStore(db), now);
    expect(seen.has(seenKey('okta', 'a'))).toBe(true);
    expect(seen.has(seenKey('auth0', 'b'))).toBe(true);
    expect(seen.has(seenKey('ssf', 'c'))).toBe(true);
    expect(seen.has(seenKey('okta', 'too-old'))).toBe(false);
    expect(seen.has(seenKey('okta', 'not-a-provider-record'))).toBe(false);
    expect(seen.has(seenKey('okta', 'd'))).toBe(false);
    expect(seen.size).toBe(3);

    const capped = new SeenEvents({ windowMs: 1000, maxEntries: 2 });
    capped.rebuild(new LedgerStore(db), now);
    expect(capped.has(seenKey('okta', 'a'))).toBe(false);
    expect(capped.has(seenKey('ssf', 'c'))).toBe(true);
    db.close();
  });
});
